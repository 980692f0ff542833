"""forgeflow's own figures, measured as a client sees them: through the API over HTTP
(create, poll the status, download the ZIP), or, where the API cannot yet pick a
template, by starting the workflow with the Temporal client as the API would."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy

from api.schemas import FLAG_FIELDS
from bench.baselines import history_stats
from workflows import workflow_id_for
from workflows.project_generation import ProjectGenerationWorkflow
from workflows.types import SA_OWNER, SA_PROJECT_ID, SA_STATUS, SA_TEMPLATE, ProjectGenerationInput

POLL_S = 0.02  # status polling interval of the latency runs


class ProjectFailed(RuntimeError):
    pass


def all_flags_request(n: int) -> dict[str, str]:
    return {"project_name": f"Bench {n:04d}", "project_slug": f"bench_{n:04d}", **{f: "y" for f in FLAG_FIELDS}}


def api_client(base_url: str, key: str, connections: int = 10) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=f"{base_url}/api/v1", headers={"X-API-Key": key}, timeout=120, limits=limits)


async def create(http: httpx.AsyncClient, body: dict[str, Any]) -> int:
    response = await http.post("/projects", json=body)
    if response.status_code != 201:
        raise RuntimeError(f"create answered {response.status_code}: {response.text}")
    return int(response.json()["project"]["id"])


async def wait_ready(http: httpx.AsyncClient, project_id: int, poll: float = POLL_S, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while True:
        response = await http.get(f"/projects/{project_id}/status")
        if response.status_code != 200:
            raise RuntimeError(f"status of project {project_id} answered {response.status_code}: {response.text}")
        body = response.json()
        if body["status"] == "ready" and body["artifact_ready"]:
            return
        if body["status"] in ("failed", "cancelled"):
            raise ProjectFailed(f"project {project_id} {body['status']}: {body['error_message']}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"project {project_id} is still {body['status']} after {timeout:.0f} s")
        await asyncio.sleep(poll)


async def download(http: httpx.AsyncClient, project_id: int) -> int:
    response = await http.get(f"/projects/{project_id}/artifact")
    response.raise_for_status()
    if hashlib.sha256(response.content).hexdigest() != response.headers["x-content-sha256"]:
        raise RuntimeError(f"the artifact of project {project_id} does not match its SHA-256")
    return len(response.content)


async def e2e_once(http: httpx.AsyncClient, n: int) -> tuple[float, int]:
    """Seconds for one project, create -> ready -> ZIP downloaded; and its id."""
    start = time.perf_counter()
    project_id = await create(http, all_flags_request(n))
    await wait_ready(http, project_id)
    await download(http, project_id)
    return time.perf_counter() - start, project_id


async def _count(http: httpx.AsyncClient, status: str) -> int:
    response = await http.get("/projects", params={"status": status, "limit": 1})
    return int(response.json()["total"])


async def throughput(http: httpx.AsyncClient, count: int, first: int, timeout: float = 3600) -> dict[str, Any]:
    """Create ``count`` projects at once; seconds until every one of them is ready (or
    failed: failures are counted, not waited for again)."""
    ready_before, failed_before = await _count(http, "ready"), await _count(http, "failed")
    start = time.perf_counter()
    await asyncio.gather(*(create(http, all_flags_request(first + n)) for n in range(count)))
    created = time.perf_counter() - start
    failed, polls = 0, 0
    while True:  # 4 light requests a second, so the poller's own load stays negligible
        ready = await _count(http, "ready") - ready_before
        if polls % 8 == 0 or ready + failed >= count:
            failed = await _count(http, "failed") - failed_before
        if ready + failed >= count:
            break
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"{ready}/{count} projects ready after {timeout:.0f} s")
        polls += 1
        await asyncio.sleep(0.25)
    wall = time.perf_counter() - start
    return {"projects": count, "failed": failed, "create_s": created, "wall_s": wall, "projects_per_s": ready / wall}


# --- fan-out: one project of the synthetic template ------------------------------------


async def _start_directly(
    client: Client, database_url: str, owner_id: int, template: str, body: dict[str, Any], bound: int
) -> int:
    """What the API does for a create, for a template the API cannot select yet."""
    from store.db import Database
    from store.projects import create_project

    db = Database(database_url)
    try:
        with db.session(write_lock=True) as session:
            project = create_project(
                session,
                owner_id=owner_id,
                quota=10**9,
                name=body["project_name"],
                slug=body["project_slug"],
                description="",
                template=template,
                input_payload=body,
            )
    finally:
        db.dispose()
    await client.start_workflow(
        ProjectGenerationWorkflow.run,
        ProjectGenerationInput(
            project_id=project.id,
            owner="bench",
            name=project.name,
            slug=project.slug,
            template=template,
            answers=body,
            max_parallel_tasks=bound,
        ),
        id=workflow_id_for(project.id),
        task_queue="forgeflow",
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(SA_PROJECT_ID, project.id),
                SearchAttributePair(SA_OWNER, "bench"),
                SearchAttributePair(SA_STATUS, "queued"),
                SearchAttributePair(SA_TEMPLATE, template),
            ]
        ),
    )
    return project.id


async def fanout(
    http: httpx.AsyncClient,
    client: Client,
    *,
    template: str,
    database_url: str,
    owner_id: int,
    bound: int,
) -> dict[str, Any]:
    """One project of ``template``: through the API's ``template`` field when it takes
    one, else started directly; wall time to ready with the ZIP downloaded."""
    body = {"project_name": "Fanout Bench", "project_slug": "fanout_bench"}
    start = time.perf_counter()
    response = await http.post("/projects", json={**body, "template": template})
    if response.status_code == 201:
        project_id, via = int(response.json()["project"]["id"]), "api"
    elif response.status_code in (400, 422):
        start = time.perf_counter()
        project_id = await _start_directly(client, database_url, owner_id, template, body, bound)
        via = "temporal client (the API refused the template field)"
    else:
        raise RuntimeError(f"create answered {response.status_code}: {response.text}")
    await wait_ready(http, project_id, poll=0.1)
    size = await download(http, project_id)
    wall = time.perf_counter() - start
    handle = client.get_workflow_handle(workflow_id_for(project_id))
    parent = await history_stats(handle)
    # Large plans run their tasks in child workflows: the figure is the largest history.
    executions = {handle.id: parent}
    for event in (await handle.fetch_history()).events:
        if event.HasField("child_workflow_execution_started_event_attributes"):
            child_id = event.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id
            executions[child_id] = await history_stats(client.get_workflow_handle(child_id))
    largest = max(executions.values(), key=lambda stats: stats["history_events"])
    return {"wall_s": wall, "project_id": project_id, "started_via": via, "zip_bytes": size} | {
        **parent,
        "history_events": largest["history_events"],
        "history_bytes": max(stats["history_bytes"] for stats in executions.values()),
        "suggest_continue_as_new": any(stats["suggest_continue_as_new"] for stats in executions.values()),
        "executions": {wid: stats["history_events"] for wid, stats in executions.items()},
    }
