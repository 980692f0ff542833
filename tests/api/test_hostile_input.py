"""Whatever a client sends, the answer is a documented error, never a 500, and nothing is lost."""

from __future__ import annotations

import pytest


@pytest.fixture
def auth(make_key):
    return {"X-API-Key": make_key().key}


def contract(response) -> dict:
    body = response.json()
    assert set(body["error"]) >= {"code", "category", "message", "retryable", "details"}
    return body["error"]


async def test_oversized_bodies_are_413_declared_or_streamed(http, auth):
    big = b'{"project_name": "' + b"x" * 2_000_000 + b'"}'
    declared = await http.post("/projects", content=big, headers=auth | {"Content-Type": "application/json"})
    assert declared.status_code == 413 and contract(declared)["code"] == "payload_too_large"

    async def chunks():
        for _ in range(40):
            yield b" " * 65536

    streamed = await http.post("/projects", content=chunks(), headers=auth | {"Content-Type": "application/json"})
    assert streamed.status_code == 413 and contract(streamed)["details"]["max_bytes"] == 1_048_576


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 50_000,
        b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
        b"\xff\xfe\x00",
        b'{"project_name": "a"',
        b"null",
        b"1e999999",
    ],
)
async def test_malformed_or_pathological_json_is_400(http, auth, raw):
    response = await http.post("/projects", content=raw, headers=auth | {"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert contract(response)["code"] == "invalid_payload"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"project_name": "x" * 100_000}, "project_name"),
        ({"project_name": "ok", "project_description": "d" * 100_000}, "project_description"),
        ({"project_name": "nul\x00byte"}, "project_name"),
        ({"project_name": "ok", "author_name": "a\x00"}, "author_name"),
        ({"project_name": "ok", "answers": "not an object"}, "answers"),
        ({"project_name": "ok", "require_approval": "maybe"}, "require_approval"),
    ],
)
async def test_bad_fields_are_400_naming_them(http, auth, body, field):
    response = await http.post("/projects", json=body, headers=auth)
    assert response.status_code == 400, response.text
    assert contract(response)["details"]["field"] == field


UNICODE = "Ünïcødé 🚀 مرحبا 漢字 e\u0301 \u202etxt.exe \u210c\U0001d522\U0001d529\U0001d529\U0001d52c"


async def test_unicode_in_every_text_field_is_kept(http, auth):
    body = {
        "project_name": UNICODE,
        "project_description": UNICODE,
        "author_name": UNICODE,
        "author_url": f"https://example.test/{UNICODE}",
        "repo_url": f"https://example.test/{UNICODE}",
    }
    created = await http.post("/projects", json=body, headers=auth)
    assert created.status_code == 201, created.text
    project = created.json()["project"]
    assert project["name"] == UNICODE and project["input_payload"]["project_description"] == UNICODE
    assert project["slug"] == "unicde_e_txtexe_hello"  # Django's slugify drops what NFKD cannot fold
    again = await http.get(f"/projects/{project['id']}", headers=auth)
    assert again.json()["name"] == UNICODE


@pytest.mark.parametrize("slug", ["con", "NUL", "Com1", "lpt9", "aux"])
async def test_reserved_slugs_are_refused(http, auth, slug):
    response = await http.post("/projects", json={"project_name": "ok", "project_slug": slug}, headers=auth)
    assert response.status_code == 400
    assert contract(response)["code"] == "invalid_project_slug"


async def test_header_injection_through_the_name_goes_nowhere(http, worker, auth):
    from tests.api.test_quickstart import poll_until_done

    # The built-in template escapes what it renders, so even this name generates a valid project.
    body = {"project_name": 'evil"\r\nSet-Cookie: pwned=1\r\n'}
    created = await http.post("/projects", json=body, headers=auth)
    assert created.status_code == 201
    project = created.json()["project"]
    assert project["slug"] == "evil_set_cookie_pwned1"
    assert (await poll_until_done(http, project["id"], auth))["status"] == "ready"
    artifact = await http.get(f"/projects/{project['id']}/artifact", headers=auth)
    assert "set-cookie" not in artifact.headers
    assert artifact.headers["content-disposition"] == 'attachment; filename="evil_set_cookie_pwned1.zip"'


async def test_range_requests_on_the_artifact(http, worker, auth):
    from tests.api.test_quickstart import poll_until_done

    created = await http.post("/projects", json={"project_name": "Ranged", "template": "widget-lib"}, headers=auth)
    project_id = created.json()["project"]["id"]
    await poll_until_done(http, project_id, auth)
    full = await http.get(f"/projects/{project_id}/artifact", headers=auth)
    part = await http.get(f"/projects/{project_id}/artifact", headers=auth | {"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == full.content[:100]
    assert full.headers["etag"] == f'"{full.headers["x-content-sha256"]}"'
