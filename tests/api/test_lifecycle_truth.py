"""The lifecycle tells the truth: a decision names what it decides and is taken once, an
action answers the state it led to, a paused project says so, and steering without
Temporal is retryable."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import update
from temporalio import activity

from forgeflow.worker import build_activities, build_worker
from store.models import Project
from tests.api.test_lifecycle import GATED, wait_for_status
from tests.api.test_quickstart import poll_until_done
from tests.api.test_temporal_unavailable import closed_port
from tests.support import LiveServer
from workflows.types import SA_OWNER, SA_PROJECT_ID, SA_TEMPLATE, WRITE_SPEC, SpecInput, SpecResult

SPEC_SECONDS = 1.5  # a spec writer as slow as a model, for the race below
REVIEWED = {**GATED, "ask_questions": False}


@pytest_asyncio.fixture
async def slow_spec_worker(client, settings, db):
    activities = build_activities(settings, db)
    real = next(a for a in activities if getattr(a, "__temporal_activity_definition").name == WRITE_SPEC)

    @activity.defn(name=WRITE_SPEC)
    def slow_write_spec(input: SpecInput) -> SpecResult:
        if input.version > 1:
            time.sleep(SPEC_SECONDS)
        return real(input)

    replaced = [a for a in activities if a is not real] + [slow_write_spec]
    with ThreadPoolExecutor(max_workers=8) as executor:
        async with build_worker(client, settings, db=db, executor=executor, activities=replaced) as worker:
            yield worker


@pytest.fixture
def auth(make_key):
    return {"X-API-Key": make_key().key}


async def created(http, auth, body=REVIEWED) -> int:
    response = await http.post("/projects", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()["project"]["id"]


async def test_an_approval_cannot_approve_a_spec_nobody_has_seen(http, slow_spec_worker, auth):
    project_id = await created(http, auth)
    await wait_for_status(http, project_id, auth, "awaiting_approval")
    regenerated = await http.post(
        f"/projects/{project_id}/regenerate", json={"feedback": "More", "version": 1}, headers=auth
    )
    # The answer is the state the decision led to: spec v2 is being written, nothing awaits review.
    assert regenerated.status_code == 200, regenerated.text
    assert (regenerated.json()["status"], regenerated.json()["phase"]) == ("generating", "spec")
    for body in ({}, {"version": 1}, {"version": 2}):
        early = await http.post(f"/projects/{project_id}/approve", json=body, headers=auth)
        assert early.status_code == 409, (body, early.text)
        assert early.json()["error"]["code"] == "invalid_state"
        assert "phase spec" in early.json()["error"]["message"]
    project = await wait_for_status(http, project_id, auth, "awaiting_approval")
    assert project["spec_version"] == 2  # v2 still awaits its review: nothing approved it
    stale = await http.post(f"/projects/{project_id}/approve", json={"version": 1}, headers=auth)
    assert stale.status_code == 409 and "v2 is under review, not v1" in stale.json()["error"]["message"]
    approved = await http.post(f"/projects/{project_id}/approve", json={"version": 2}, headers=auth)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "generating" and approved.json()["phase"] in ("decompose", "tasks")
    assert (await http.post(f"/projects/{project_id}/approve", json={"version": 2}, headers=auth)).status_code == 409
    assert (await poll_until_done(http, project_id, auth))["status"] == "ready"
    spec = (await http.get(f"/projects/{project_id}/spec", headers=auth)).json()
    assert spec["version"] == 2 and spec["approved_at"]


async def test_actions_answer_the_state_they_lead_to(http, worker, auth):
    project_id = await created(http, auth, GATED)
    await wait_for_status(http, project_id, auth, "awaiting_answers")
    answered = await http.post(
        f"/projects/{project_id}/answers",
        json={"answers": {"license": "MIT", "use_cli": "y", "python_version": "3.12"}},
        headers=auth,
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "generating" and answered.json()["queued"] is False
    await wait_for_status(http, project_id, auth, "awaiting_approval")
    rejected = await http.post(f"/projects/{project_id}/reject", json={"notes": "no"}, headers=auth)
    assert (rejected.json()["status"], rejected.json()["phase"]) == ("failed", "failed")

    other = await created(http, auth)
    await wait_for_status(http, other, auth, "awaiting_approval")
    cancelled = await http.post(f"/projects/{other}/cancel", headers=auth)
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["phase"], cancelled.json()["queued"]) == (
        "cancelled",
        "cancelled",
        False,
    )
    assert (await http.get(f"/projects/{other}", headers=auth)).json()["status"] == "cancelled"
    retried = await http.post(f"/projects/{other}/retry", headers=auth)
    assert retried.status_code == 202 and retried.json()["accepted"] == "retry"
    assert retried.json()["queued"] is False


async def test_a_paused_project_says_so(http, worker, auth):
    project_id = await created(http, auth)
    await wait_for_status(http, project_id, auth, "awaiting_approval")
    paused = await http.post(f"/projects/{project_id}/pause", headers=auth)
    assert paused.status_code == 200 and paused.json()["paused"] is True
    assert (await http.get(f"/projects/{project_id}", headers=auth)).json()["paused"] is True
    await http.post(f"/projects/{project_id}/approve", json={}, headers=auth)
    project = await wait_for_status(http, project_id, auth, "generating")
    deadline = asyncio.get_running_loop().time() + 20
    while project["phase"] != "tasks":
        assert asyncio.get_running_loop().time() < deadline, project
        await asyncio.sleep(0.05)
        project = (await http.get(f"/projects/{project_id}", headers=auth)).json()
    assert project["paused"] is True  # the status writes since leave the flag as it was
    resumed = await http.post(f"/projects/{project_id}/resume", headers=auth)
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    assert (await poll_until_done(http, project_id, auth))["status"] == "ready"
    final = (await http.get(f"/projects/{project_id}", headers=auth)).json()
    assert final["paused"] is False
    types = [
        e["type"] for e in (await http.get(f"/projects/{project_id}/events?limit=1000", headers=auth)).json()["events"]
    ]
    assert types.count("project_paused") == 1 and types.count("project_resumed") == 1
    assert types.index("project_paused") < types.index("spec_approved") < types.index("project_resumed")


async def test_a_v1_project_shows_no_pause_field_until_paused(http, worker, auth):
    project_id = await created(http, auth, {"project_name": "Plain"})
    await poll_until_done(http, project_id, auth)
    assert "paused" not in (await http.get(f"/projects/{project_id}", headers=auth)).json()


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "approve", {}, "awaiting_approval"),
        ("POST", "reject", {}, "awaiting_approval"),
        ("POST", "regenerate", {"feedback": "x"}, "awaiting_approval"),
        ("POST", "pause", None, "generating"),
        ("POST", "resume", None, "generating"),
        ("POST", "cancel", None, "generating"),
        ("POST", "retry", None, "failed"),
        ("DELETE", "", None, "generating"),
    ],
)
async def test_steering_without_temporal_is_503_retryable(settings, db, project_row, method, path, body, status):
    key, project_id = project_row()
    with db.session() as session:  # where the action is allowed, so that only Temporal can refuse it
        session.execute(update(Project).where(Project.id == project_id).values(status=status))
    down = settings.model_copy(update={"temporal_address": f"127.0.0.1:{closed_port()}"})
    async with LiveServer(down) as server, httpx.AsyncClient(base_url=f"{server.url}/api/v1", timeout=60) as http:
        url = f"/projects/{project_id}" + (f"/{path}" if path else "")
        response = await http.request(method, url, json=body, headers={"X-API-Key": key.key})
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "retryable_error" and response.headers["retry-after"]
        # Nothing half-done: the project is still there, as it was.
        again = await http.get(f"/projects/{project_id}", headers={"X-API-Key": key.key})
        assert again.status_code == 200 and again.json()["status"] == status


async def test_a_retried_run_carries_the_same_search_attributes_as_the_first(http, worker, auth, client):
    project_id = await created(http, auth)
    await wait_for_status(http, project_id, auth, "awaiting_approval")
    first = await client.get_workflow_handle(f"project-{project_id}").describe()
    assert (await http.post(f"/projects/{project_id}/cancel", headers=auth)).status_code == 200
    assert (await http.post(f"/projects/{project_id}/retry", headers=auth)).status_code == 202
    await wait_for_status(http, project_id, auth, "awaiting_approval")
    second = await client.get_workflow_handle(f"project-{project_id}").describe()
    assert second.run_id != first.run_id
    for key in (SA_PROJECT_ID, SA_OWNER, SA_TEMPLATE):
        assert second.typed_search_attributes.get(key) == first.typed_search_attributes.get(key) is not None
    assert second.typed_search_attributes.get(SA_PROJECT_ID) == project_id
    assert "run 2 (retry)" in (await second.static_details() or "")
    # Events carry their run in the keys the run writes them with (store/event_filter.py):
    # the filter splits a real project's two runs, every event of each found once.
    everything = (await http.get(f"/projects/{project_id}/events?limit=1000", headers=auth)).json()["events"]
    by_run = {
        n: (await http.get(f"/projects/{project_id}/events?run={n}&limit=1000", headers=auth)).json()["events"]
        for n in (1, 2)
    }
    assert by_run[1] and by_run[2] and not {e["id"] for e in by_run[1]} & {e["id"] for e in by_run[2]}
    assert "project_cancelled" in [e["type"] for e in by_run[1]] and "project_cancelled" not in [
        e["type"] for e in by_run[2]
    ]
    assert [e["type"] for e in by_run[2]].count("status_changed") >= 2
    assert {e["id"] for e in by_run[1]} | {e["id"] for e in by_run[2]} == {e["id"] for e in everything}
