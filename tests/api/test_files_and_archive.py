"""Browsing the output, traversal attempts, PATCH and archive."""

from __future__ import annotations

import json

import pytest

from tests.api.test_quickstart import poll_until_done
from tests.support import raw_get


@pytest.fixture
async def ready_project(http, worker, make_key):
    auth = {"X-API-Key": make_key().key}
    body = {"project_name": "Gadget Kit", "template": "widget-lib"}
    project_id = (await http.post("/projects", json=body, headers=auth)).json()["project"]["id"]
    assert (await poll_until_done(http, project_id, auth))["status"] == "ready"
    return project_id, auth


async def test_files_listing_and_content(http, ready_project):
    project_id, auth = ready_project
    root = (await http.get(f"/projects/{project_id}/files", headers=auth)).json()
    entries = {e["path"]: e for e in root["entries"]}
    assert entries["src"]["type"] == "directory" and entries["README.md"]["type"] == "file"
    assert entries[".forgeflow"]["type"] == "directory"
    src = (await http.get(f"/projects/{project_id}/files", params={"path": "src/gadget_kit"}, headers=auth)).json()
    assert [e["path"] for e in src["entries"]] == ["src/gadget_kit/__init__.py", "src/gadget_kit/cli.py"]
    content = await http.get(f"/projects/{project_id}/files/src/gadget_kit/__init__.py", headers=auth)
    assert content.status_code == 200 and 'NAME = "Gadget Kit"' in content.text
    manifest = await http.get(f"/projects/{project_id}/files/.forgeflow/manifest.json", headers=auth)
    assert manifest.json()["template"]["id"] == "widget-lib"


TRAVERSALS = [
    "../../etc/passwd",
    "src/../../x",
    "%2e%2e/%2e%2e/etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "src//gadget_kit",
    "./README.md",
    "src%5Cgadget_kit",
    "nope.txt",
    "%00",
    "/etc/passwd",
    "src/%2e%2e/README.md",
]


async def test_escapes_and_unknown_files_are_404(api, ready_project):
    project_id, auth = ready_project
    for path in TRAVERSALS:  # sent raw: an HTTP client would normalise the dots away
        # A control character in the target may be refused before routing: 422 invalid_parameters.
        expected = (404, 422) if "%00" in path else (404,)
        status, body = await raw_get(api.url, f"/api/v1/projects/{project_id}/files/{path}", auth)
        assert status in expected, (path, body)
        assert json.loads(body)["error"]["code"] in ("file_not_found", "not_found", "invalid_parameters")
        status, body = await raw_get(api.url, f"/api/v1/projects/{project_id}/files?path={path}", auth)
        assert status in expected, (path, body)


async def test_patch_and_archive(http, ready_project, make_key):
    project_id, auth = ready_project
    patched = await http.patch(f"/projects/{project_id}", json={"name": "Gadget Kit 2"}, headers=auth)
    assert patched.status_code == 200 and patched.json()["name"] == "Gadget Kit 2"
    assert (await http.patch(f"/projects/{project_id}", json={"slug": "x"}, headers=auth)).status_code == 400
    assert (await http.patch(f"/projects/{project_id}", json={"name": ""}, headers=auth)).status_code == 400
    stranger = {"X-API-Key": make_key().key}
    assert (await http.delete(f"/projects/{project_id}", headers=stranger)).status_code == 404
    archived = await http.delete(f"/projects/{project_id}", headers=auth)
    assert archived.json() == {"id": project_id, "status": "archived"}
    assert (await http.get(f"/projects/{project_id}", headers=auth)).status_code == 404
    assert (await http.get("/projects", headers=auth)).json()["total"] == 0


async def test_archive_frees_quota_and_cancels_a_running_project(http, worker, make_key):
    auth = {"X-API-Key": make_key(quota=1).key}
    gated = {"project_name": "A", "template": "widget-lib", "require_approval": True}
    first = (await http.post("/projects", json=gated, headers=auth)).json()["project"]["id"]
    assert (await http.post("/projects", json=gated, headers=auth)).status_code == 429
    assert (await http.delete(f"/projects/{first}", headers=auth)).status_code == 200
    assert (await http.post("/projects", json=gated, headers=auth)).status_code == 201
