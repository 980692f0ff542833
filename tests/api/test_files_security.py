"""Browsing the output as an attacker would (issue 13, finding 11): files that would run in a
browser, traversal, and huge members read many times at once."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import update

from store.artifacts import LocalArtifactStore
from store.models import Project
from tests.support import raw_get

XSS = b"<script>document.title='owned'</script>"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
FILES: dict[str, bytes] = {
    "README.md": b"# Gadget\n",
    "logo.svg": b'<svg xmlns="http://www.w3.org/2000/svg">' + XSS + b"</svg>",
    "templates/page.html": b"<html><body>" + XSS + b"</body></html>",
    "static/app.js": b"alert(1)\n",
    "static/pic.png": PNG,
    "data.json": b'{"a": 1}',
    "LICENSE": "MIT — ©\n".encode(),
    "tool.bin": bytes(range(256)) * 4,
    "archive.txt.gz": b"\x1f\x8b\x08\x00" + bytes(32),
    'docs/ünïcode "name".txt': b"text",
}
# (Content-Type, Content-Disposition kind) each file must be served with.
EXPECTED = {
    "README.md": ("text/plain; charset=utf-8", "inline"),
    "logo.svg": ("image/svg+xml", "attachment"),
    "templates/page.html": ("text/plain; charset=utf-8", "inline"),
    "static/app.js": ("text/plain; charset=utf-8", "inline"),
    "static/pic.png": ("image/png", "inline"),
    "data.json": ("application/json", "attachment"),
    "LICENSE": ("text/plain; charset=utf-8", "inline"),
    "tool.bin": ("application/octet-stream", "attachment"),
    "archive.txt.gz": ("application/octet-stream", "attachment"),
    'docs/ünïcode "name".txt': ("text/plain; charset=utf-8", "inline"),
}


def store_zip(settings, db, project_id: int, members: dict[str, bytes | Path]) -> None:
    """The project's output as the worker leaves it: a ZIP under one root folder in the
    artifact store, and the project ready."""
    work = settings.data_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"{project_id}.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("gadget/static/", b"")  # a directory entry, as some tools write them
        for name, content in members.items():
            if isinstance(content, Path):
                zf.write(content, f"gadget/{name}")
            else:
                zf.writestr(f"gadget/{name}", content)
    key = f"projects/{project_id}/output.zip"
    LocalArtifactStore(settings.artifact_dir).put_file(key, path)
    with db.session() as session:
        session.execute(
            update(Project)
            .where(Project.id == project_id)
            .values(status="ready", artifact_ready=True, artifact_key=key)
        )


@pytest.fixture
def zip_project(settings, db, project_row):
    key, project_id = project_row()
    store_zip(settings, db, project_id, FILES)
    return project_id, {"X-API-Key": key.key}


async def test_files_that_could_run_are_never_served_to_run(http, zip_project):
    project_id, auth = zip_project
    for name, content in FILES.items():
        response = await http.get(f"/projects/{project_id}/files/{name}", headers=auth)
        assert response.status_code == 200, (name, response.text)
        assert response.content == content, name
        media_type, kind = EXPECTED[name]
        assert response.headers["content-type"] == media_type, name
        assert response.headers["content-disposition"].split(";")[0] == kind, name
        assert response.headers["x-content-type-options"] == "nosniff", name
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "sandbox" in csp, name
        assert int(response.headers["content-length"]) == len(content), name
    named = await http.get(f'/projects/{project_id}/files/docs/ünïcode "name".txt', headers=auth)
    assert "filename*=UTF-8''%C3%BCn%C3%AFcode%20%22name%22.txt" in named.headers["content-disposition"]
    assert 'filename="_n_code _name_.txt"' in named.headers["content-disposition"]
    listing = await http.get(f"/projects/{project_id}/files", params={"path": "static"}, headers=auth)
    assert listing.status_code == 200 and listing.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in listing.headers["content-security-policy"]


HOSTILE_PATHS = [
    "../../etc/passwd",
    "%2e%2e/%2e%2e/etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%252e%252e%252fREADME.md",
    "static/..%5c..%5cREADME.md",
    "static/%2e%2e/README.md",
    "static",  # a directory, not a file
    "static/",
    "README.md%00.png",
    "/README.md",
    "%2fREADME.md",
    "." * 300,
    "a/" * 400 + "b",
    "%ff%fe",
    "%c0%ae%c0%ae/README.md",
]


async def test_hostile_file_paths_are_refused_never_5xx(api, zip_project):
    project_id, auth = zip_project
    for path in HOSTILE_PATHS:  # sent raw: an HTTP client would normalise the dots away
        status, body = await raw_get(api.url, f"/api/v1/projects/{project_id}/files/{path}", auth)
        # 404 file_not_found; 422 invalid_parameters for control characters in the target.
        assert status in (404, 422), (path, status, body[:300])
        assert json.loads(body)["error"]["code"] in ("file_not_found", "not_found", "invalid_parameters"), path


async def test_files_of_a_project_not_ready_or_of_another_owner(http, zip_project, project_row):
    project_id, _ = zip_project
    stranger_key, stranger_project = project_row()
    stranger = {"X-API-Key": stranger_key.key}
    assert (await http.get(f"/projects/{project_id}/files/README.md", headers=stranger)).status_code == 404
    not_ready = await http.get(f"/projects/{stranger_project}/files/README.md", headers=stranger)
    assert not_ready.status_code == 409 and not_ready.json()["error"]["code"] == "invalid_state"
