"""The seed's section 5 quickstart, over real HTTP, against a real worker and server."""

from __future__ import annotations

import asyncio
import io
import zipfile

import httpx

DJASS_REQUEST = {
    "project_name": "Acme CRM",
    "project_slug": "acme_crm",
    "project_description": "Internal CRM for support and sales",
    "repo_url": "https://github.com/acme/acme-crm",
    "author_name": "Acme Bot",
    "author_email": "[email protected]",
    "author_url": "https://acme.test",
    "project_main_color": "green",
    **{
        flag: "y"
        for flag in (
            "use_posthog",
            "use_buttondown",
            "use_s3",
            "use_stripe",
            "use_sentry",
            "generate_blog",
            "generate_docs",
            "use_mjml",
            "use_ai",
            "use_logfire",
            "use_healthchecks",
            "use_ci",
        )
    },
}


async def poll_until_done(
    http: httpx.AsyncClient, project_id: int, headers: dict[str, str], timeout: float = 60
) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await http.get(f"/projects/{project_id}/status", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] in ("ready", "failed", "cancelled"):
            return body
        assert asyncio.get_running_loop().time() < deadline, f"still {body['status']}"
        await asyncio.sleep(0.1)


async def test_quickstart_create_list_poll_fetch_download(http, worker, make_key):
    key = make_key()
    headers = {"X-API-Key": key.key}

    created = await http.post("/projects", json=DJASS_REQUEST, headers=headers)
    assert created.status_code == 201, created.text
    project = created.json()["project"]
    assert project["status"] == "queued"
    assert project["slug"] == "acme_crm"
    assert project["artifact_ready"] is False
    assert project["started_at"] is None and project["finished_at"] is None
    assert project["input_payload"] == DJASS_REQUEST
    assert project["created_at"].endswith("Z")

    listed = await http.get("/projects?limit=1&offset=0", headers=headers)
    assert listed.status_code == 200
    body = listed.json()
    assert [p["id"] for p in body["projects"]] == [project["id"]]
    assert body["total"] == 1 and body["has_next"] is False and body["limit"] == 1

    status = await poll_until_done(http, project["id"], headers)
    assert status["status"] == "ready", status
    assert status["artifact_ready"] is True
    assert status["error_message"] == ""
    assert status["started_at"] and status["finished_at"]

    full = await http.get(f"/projects/{project['id']}", headers=headers)
    assert full.status_code == 200
    assert full.json()["status"] == "ready"

    artifact = await http.get(f"/projects/{project['id']}/artifact", headers=headers)
    assert artifact.status_code == 200
    assert artifact.headers["content-type"] == "application/zip"
    import hashlib

    digest = hashlib.sha256(artifact.content).hexdigest()
    assert artifact.headers["x-content-sha256"] == digest
    names = zipfile.ZipFile(io.BytesIO(artifact.content)).namelist()
    assert "acme_crm/.forgeflow/manifest.json" in names
    assert "acme_crm/.forgeflow/SPEC.md" in names
    assert all(n.startswith("acme_crm/") for n in names)
