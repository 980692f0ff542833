"""A project's status changes reach its webhook, signed, verified by an independent library."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError

from forgeflow.worker import build_worker
from tests.activities.test_webhooks import Receiver
from tests.api.test_quickstart import poll_until_done
from tests.support import LiveServer
from workflows import workflow_id_for
from workflows.webhooks import relay_id


async def test_unsafe_webhook_urls_are_refused_at_create(http, make_key):
    auth = {"X-API-Key": make_key().key}
    for url in ("http://169.254.169.254/latest/meta-data", "http://127.0.0.1:9/", "http://2130706433/", "ftp://x.io/"):
        refused = await http.post("/projects", json={"project_name": "Hooked", "webhook_url": url}, headers=auth)
        assert refused.status_code == 400, url
        assert refused.json()["error"]["details"]["field"] == "webhook_url"


@contextlib.asynccontextmanager
async def hooked_stack(settings, client, db, **changes: Any) -> AsyncIterator[tuple[Receiver, httpx.AsyncClient]]:
    """A webhook receiver on loopback, a worker that may call it, and the API."""
    receiver = Receiver()
    receiver.thread.start()
    local = settings.model_copy(update={"webhook_allow_private": True, **changes})
    try:
        with ThreadPoolExecutor(8) as executor:
            async with (
                build_worker(client, local, db=db, executor=executor),
                LiveServer(local) as server,
                httpx.AsyncClient(base_url=f"{server.url}/api/v1", timeout=30) as http,
            ):
                yield receiver, http
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


async def delivered(receiver: Receiver, status: str, times: int = 1) -> list[str]:
    """The statuses of the requests received, once ``status`` has been sent ``times`` times
    (within 20 s)."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        statuses = [json.loads(r["body"])["data"]["status"] for r in receiver.requests]
        if statuses.count(status) >= times:
            return statuses
        assert asyncio.get_running_loop().time() < deadline, statuses
        await asyncio.sleep(0.05)


async def gated_project(http: httpx.AsyncClient, auth: dict[str, str], receiver: Receiver) -> int:
    """A project that waits for approval, its webhook told so."""
    await http.post("/webhook-secret", headers=auth)
    body = {"project_name": "Hooked", "template": "widget-lib", "require_approval": True}
    created = await http.post("/projects", json={**body, "webhook_url": receiver.url()}, headers=auth)
    project_id: int = created.json()["project"]["id"]
    await delivered(receiver, "awaiting_approval")
    return project_id


async def current_details(handle: WorkflowHandle[Any, Any], containing: str) -> str:
    """The run's current details, once they contain ``containing`` (within 10 s)."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        if containing in metadata.current_details:
            return metadata.current_details
        assert asyncio.get_running_loop().time() < deadline, metadata.current_details
        await asyncio.sleep(0.05)


async def test_status_changes_are_delivered_signed(settings, client, db, make_key):
    auth = {"X-API-Key": make_key().key}
    async with hooked_stack(settings, client, db) as (receiver, http):
        secret = (await http.post("/webhook-secret", headers=auth)).json()["secret"]
        body = {"project_name": "Hooked", "template": "widget-lib", "webhook_url": receiver.url()}
        created = await http.post("/projects", json=body, headers=auth)
        assert created.status_code == 201, created.text
        project_id = created.json()["project"]["id"]
        assert (await poll_until_done(http, project_id, auth))["status"] == "ready"
        await delivered(receiver, "ready")
    verifier = Webhook(secret)
    statuses = []
    for request in receiver.requests:
        verifier.verify(request["body"], request["headers"])  # raises on a bad signature
        payload = json.loads(request["body"])
        assert payload["type"] == "project.status_changed" and payload["data"]["id"] == project_id
        statuses.append(payload["data"]["status"])
    assert statuses == ["generating", "ready"]
    assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 2


async def test_a_cancel_is_delivered_too(settings, client, db, make_key):
    """The run's last status change, cancelled, reaches the webhook like any other; the
    cancel is answered once it is stored, while the delivery still retries."""
    auth = {"X-API-Key": make_key().key}
    # The API waits 2 s for a cancel to be stored; the delivery takes 7 s (1 + 2 + 4).
    async with hooked_stack(settings, client, db, update_timeout=timedelta(seconds=2)) as (receiver, http):
        project_id = await gated_project(http, auth, receiver)
        receiver.script = [(503, {})] * 3  # the cancel's first three tries fail
        cancelled = await http.post(f"/projects/{project_id}/cancel", headers=auth)
        assert cancelled.status_code == 200, cancelled.text  # before: 202 "accepted", the run still open
        assert (cancelled.json()["status"], cancelled.json()["phase"]) == ("cancelled", "cancelled")
        # Meanwhile the run stays open, and tells the operator what it waits for.
        handle = client.get_workflow_handle(workflow_id_for(project_id))
        details = await current_details(handle, "Delivering 1 status change(s) to the project's webhook")
        assert "Status: **cancelled**" in details
        statuses = await delivered(receiver, "cancelled", times=4)
        with pytest.raises(WorkflowFailureError) as ended:  # then it closes, cancelled
            await asyncio.wait_for(handle.result(), 20)
        assert isinstance(ended.value.cause, CancelledError)
    assert statuses.count("cancelled") == 4 and "awaiting_approval" in statuses  # three failed tries, one taken
    cancel = next(d for r in receiver.requests if (d := json.loads(r["body"])["data"])["status"] == "cancelled")
    assert cancel == {
        "id": project_id,
        "status": "cancelled",
        "phase": "cancelled",
        "run": 1,
        "error_message": "Cancelled.",
    }


async def test_a_receiver_that_is_down_never_keeps_the_run_open(settings, client, db, make_key):
    """The run waits for its last delivery a grace period (1 s here), then hands it to a
    relay workflow and closes, so a retry is taken at once; the relay delivers it, with
    the same webhook-id, once the receiver is back."""
    auth = {"X-API-Key": make_key().key}
    async with hooked_stack(settings, client, db, webhook_grace=timedelta(seconds=1)) as (receiver, http):
        project_id = await gated_project(http, auth, receiver)
        receiver.script = [(503, {})] * 1000  # down
        assert (await http.post(f"/projects/{project_id}/cancel", headers=auth)).status_code == 200
        run = client.get_workflow_handle(workflow_id_for(project_id))
        with pytest.raises(WorkflowFailureError) as ended:
            await asyncio.wait_for(run.result(), 15)
        assert isinstance(ended.value.cause, CancelledError)
        relay = client.get_workflow_handle(relay_id(workflow_id_for(project_id), 1))
        assert (await relay.describe()).status == WorkflowExecutionStatus.RUNNING
        await current_details(relay, f"Delivering 1 status change(s) of project {project_id} to its webhook")
        retried = await http.post(f"/projects/{project_id}/retry", headers=auth)
        assert retried.status_code == 202, retried.text  # before: 409, a run "in progress" for a day
        receiver.script.clear()  # back
        await asyncio.wait_for(relay.result(), 30)
        taken = [r for r in receiver.requests if json.loads(r["body"])["data"]["status"] == "cancelled"]
        assert len(taken) >= 2 and len({r["headers"]["webhook-id"] for r in taken}) == 1
        assert json.loads(taken[-1]["body"])["data"]["run"] == 1
        await run.cancel()  # the retry's run (it waits for approval)


async def test_a_cancel_after_the_end_hands_the_deliveries_on_and_the_run_closes_as_it_ended(
    settings, client, db, make_key
):
    """Ready, the run waits for its last delivery; a cancel then (a script's) comes after
    the end: the delivery goes to the relay at once, and the run closes completed."""
    auth = {"X-API-Key": make_key().key}
    async with hooked_stack(settings, client, db, webhook_grace=timedelta(minutes=5)) as (receiver, http):
        await http.post("/webhook-secret", headers=auth)
        receiver.script = [(503, {})] * 1000  # down
        body = {"project_name": "Hooked", "template": "widget-lib", "webhook_url": receiver.url()}
        project_id = (await http.post("/projects", json=body, headers=auth)).json()["project"]["id"]
        assert (await poll_until_done(http, project_id, auth))["status"] == "ready"
        run = client.get_workflow_handle(workflow_id_for(project_id))
        await current_details(run, "status change(s) to the project's webhook: up to 300 s more here")
        await run.cancel()
        result = await asyncio.wait_for(run.result(), 15)  # not a 5-minute grace, and not cancelled
        assert result["status"] == "ready"  # untyped handle: the result as JSON
        relay = client.get_workflow_handle(relay_id(workflow_id_for(project_id), 1))
        assert (await relay.describe()).status == WorkflowExecutionStatus.RUNNING
        receiver.script.clear()  # back
        await asyncio.wait_for(relay.result(), 30)
        assert "ready" in await delivered(receiver, "ready", times=2)  # tried while down, then taken
