"""The whole stack on the S3 artifact store (a real S3-compatible server, moto's, in a process
on 127.0.0.1, reached through a TCP proxy the test can cut): runs store everything there and
the API serves it; with the store unreachable creates still succeed, downloads answer 503,
runs wait (their pending activity says why) and end ready once the store is back."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator

import pytest
from temporalio.client import Client

from forgeflow.settings import Settings
from tests.api.test_lifecycle import wait_for_status
from tests.api.test_quickstart import poll_until_done
from tests.s3server import ClosableProxy, MotoServer, S3Bucket, object_keys
from workflows import workflow_id_for


@pytest.fixture
def s3_proxy(s3_server: MotoServer) -> Iterator[ClosableProxy]:
    proxy = ClosableProxy(s3_server.port)
    proxy.open()
    yield proxy
    proxy.close()


@pytest.fixture
def settings(settings: Settings, s3_bucket: S3Bucket, s3_proxy: ClosableProxy) -> Settings:
    """Every process of these tests (API and worker) on the S3 store, through the proxy."""
    return settings.model_copy(update={"artifacts_url": s3_bucket.url, "artifacts_endpoint_url": s3_proxy.url})


async def download(http, project_id: int, auth: dict[str, str]) -> bytes:
    response = await http.get(f"/projects/{project_id}/artifact", headers=auth)
    assert response.status_code == 200, response.text
    assert hashlib.sha256(response.content).hexdigest() == response.headers["x-content-sha256"]
    assert response.headers["etag"] == f'"{response.headers["x-content-sha256"]}"'
    return response.content


async def test_a_project_on_s3_ends_ready_and_the_api_serves_it(http, worker, make_key, settings, s3_bucket):
    auth = {"X-API-Key": make_key().key}
    created = await http.post("/projects", json={"project_name": "Cloud Kit"}, headers=auth)  # the built-in template
    assert created.status_code == 201, created.text
    project_id = created.json()["project"]["id"]
    assert (await poll_until_done(http, project_id, auth))["status"] == "ready"

    data = await download(http, project_id, auth)
    project = (await http.get(f"/projects/{project_id}", headers=auth)).json()
    assert project["artifact_ready"] and len(data) > 1000
    ranged = await http.get(f"/projects/{project_id}/artifact", headers={**auth, "Range": "bytes=100-1099"})
    assert ranged.status_code == 206 and ranged.content == data[100:1100]
    assert ranged.headers["content-range"] == f"bytes 100-1099/{len(data)}"

    listing = await http.get(f"/projects/{project_id}/files", headers=auth)
    assert listing.status_code == 200 and "README.md" in {e["path"] for e in listing.json()["entries"]}
    readme = await http.get(f"/projects/{project_id}/files/README.md", headers=auth)
    assert readme.status_code == 200 and "Cloud Kit" in readme.text

    # Everything the run stored is in the bucket, under the prefix; nothing on the local disk.
    keys = object_keys(s3_bucket)
    run = f"forgeflow/projects/{project_id}/runs/1/"
    assert all(k.startswith(run) for k in keys)
    assert {k.rsplit(".", 1)[-1] for k in keys} >= {"zip", "bundle", "md"}
    assert any("/tasks/" in k for k in keys) and any("/spec/v1/" in k for k in keys)
    assert not settings.artifact_dir.exists()


async def pending_failure(client: Client, project_id: int, timeout: float = 30) -> tuple[str, int, str]:
    """The activity type, attempt and last failure the Web UI shows for the run's pending
    activity, once it has failed at least once."""
    handle = client.get_workflow_handle(workflow_id_for(project_id))
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        described = await handle.describe()
        for pending in described.raw_description.pending_activities:
            if pending.attempt >= 2 and pending.last_failure.message:
                return pending.activity_type.name, pending.attempt, pending.last_failure.message
        assert asyncio.get_running_loop().time() < deadline, "no activity failed against the store"
        await asyncio.sleep(0.2)


async def test_an_unreachable_store_delays_runs_and_answers_503_but_fails_nothing(
    http, worker, make_key, client, s3_bucket, s3_proxy
):
    auth = {"X-API-Key": make_key().key}
    widget = {"project_name": "Gadget Kit", "template": "widget-lib"}
    ready = (await http.post("/projects", json=widget, headers=auth)).json()["project"]["id"]
    gated = await http.post("/projects", json={**widget, "require_approval": True}, headers=auth)
    gated_id = gated.json()["project"]["id"]
    assert (await poll_until_done(http, ready, auth))["status"] == "ready"
    listed = await http.get(f"/projects/{ready}/files", headers=auth)  # the ZIP's local copy is made
    assert listed.status_code == 200
    await wait_for_status(http, gated_id, auth, "awaiting_approval")

    s3_proxy.close()  # the store is down
    try:
        refused = await http.get(f"/projects/{ready}/artifact", headers=auth)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "2"
        error = refused.json()["error"]
        assert (error["code"], error["category"], error["retryable"]) == ("retryable_error", "retryable", True)
        assert s3_proxy.url not in refused.text  # the endpoint is for the logs
        # Files already copied locally still read; the listing of the ZIP needs no store.
        assert (await http.get(f"/projects/{ready}/files/README.md", headers=auth)).status_code == 200

        created = await http.post("/projects", json=widget, headers=auth)
        assert created.status_code == 201, created.text
        waiting = created.json()["project"]["id"]
        approved = await http.post(f"/projects/{gated_id}/approve", json={}, headers=auth)
        assert approved.status_code == 200, approved.text
        # The gated run's tasks cannot store their bundles: retried, and the Web UI says why.
        activity, attempt, failure = await pending_failure(client, gated_id)
        assert activity in ("run_task", "run_tasks") and attempt >= 2
        assert f"artifact store {s3_bucket.url} at {s3_proxy.url}" in failure and "secret" not in failure
        for project_id in (gated_id, waiting):
            status = (await http.get(f"/projects/{project_id}/status", headers=auth)).json()
            assert status["status"] in ("queued", "generating") and not status["artifact_ready"]
    finally:
        # Back, with every object it held (also when the above fails: a worker cannot shut
        # down while a local activity still retries against a store that is down).
        s3_proxy.open()
    for project_id in (gated_id, waiting):
        assert (await poll_until_done(http, project_id, auth, timeout=90))["status"] == "ready"
        await download(http, project_id, auth)
    await download(http, ready, auth)
