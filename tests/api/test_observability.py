"""/metrics, /readyz, the admin stats and the worker's Temporal metrics, over real HTTP."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from prometheus_client.parser import text_string_to_metric_families

from forgeflow import __version__
from forgeflow.ports import free_port
from forgeflow.settings import Settings
from forgeflow.temporal import connect
from forgeflow.worker import build_worker, worker_runtime
from store.db import Database
from tests.api.test_quickstart import poll_until_done
from tests.support import LiveServer, error_body

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
PROJECT_ROUTE = "/api/v1/projects/{project_id}"


async def scrape(base_url: str) -> tuple[str, Samples]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{base_url}/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_requests_are_counted_by_route_template(api, http, make_key):
    key = make_key()
    _, before = await scrape(api.url)
    for project_id in (987654, 987655, 987656):
        response = await http.get(f"/projects/{project_id}", headers={"X-API-Key": key.key})
        assert response.status_code == 404
    for path in ("/nope/123", "/nope/456/x"):
        assert (await http.get(path)).status_code == 404
    # Refused by the body-size middleware before routing: still labelled by its route.
    too_big = await http.post("/projects", content=b"x" * 2_000_000, headers={"X-API-Key": key.key})
    assert too_big.status_code == 413
    _, after = await scrape(api.url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "forgeflow_http_requests_total"
    assert delta(requests, method="GET", route=PROJECT_ROUTE, status="404") == 3
    assert delta("forgeflow_http_request_duration_seconds_count", method="GET", route=PROJECT_ROUTE) == 3
    assert delta("forgeflow_http_request_duration_seconds_sum", method="GET", route=PROJECT_ROUTE) > 0
    assert delta(requests, method="GET", route="unmatched", status="404") == 2
    assert delta(requests, method="POST", route="/api/v1/projects", status="413") == 1
    # The previous scrape is counted too, under its own route.
    assert delta(requests, method="GET", route="/metrics", status="200") == 1
    label_values = {v for _, labels in after for _, v in labels}
    assert not [v for v in label_values if "987654" in v or "nope" in v or "456" in v]
    routes = {dict(labels).get("route") for name, labels in after if name == requests}
    assert all(r == "unmatched" or r.startswith("/") for r in routes), routes
    assert value(after, "forgeflow_database_up") == 1
    assert any(name.startswith("process_") for name, _ in after)


async def test_projects_gauge_follows_the_database(api, http, make_key):
    key = make_key()
    _, before = await scrape(api.url)
    for name in ("Gauge One", "Gauge Two"):
        created = await http.post("/projects", json={"project_name": name}, headers={"X-API-Key": key.key})
        assert created.status_code == 201, created.text
    _, after = await scrape(api.url)
    # No worker serves this test's task queue: both stay queued.
    queued = value(after, "forgeflow_projects", status="queued") - value(before, "forgeflow_projects", status="queued")
    assert queued == 2
    assert value(after, "forgeflow_projects", status="ready") == value(before, "forgeflow_projects", status="ready")
    # Every known status is present, at zero when no project has it.
    assert ("forgeflow_projects", frozenset({("status", "cancelled")})) in after


async def test_phase_durations_and_task_attempts_come_from_the_projection(api, http, worker, make_key):
    key = make_key()
    headers = {"X-API-Key": key.key}
    _, before = await scrape(api.url)
    created = await http.post("/projects", json={"project_name": "Phases"}, headers=headers)
    assert created.status_code == 201, created.text
    project_id = created.json()["project"]["id"]
    assert (await poll_until_done(http, project_id, headers))["status"] == "ready"
    tasks = (await http.get(f"/projects/{project_id}/runs/1/tasks", headers=headers)).json()["tasks"]
    _, after = await scrape(api.url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("forgeflow_task_attempts_total") == sum(t["attempts"] for t in tasks) >= len(tasks) > 0
    assert delta("forgeflow_tasks", status="succeeded") == len(tasks)
    assert delta("forgeflow_task_failures_total") == 0
    assert delta("forgeflow_runs", status="ready") == 1
    for phase in ("clarify", "spec", "decompose", "tasks", "verify", "export"):
        assert delta("forgeflow_phase_duration_seconds_count", phase=phase) == 1, phase
        assert delta("forgeflow_phase_duration_seconds_bucket", phase=phase, le="+Inf") == 1, phase
    assert delta("forgeflow_phase_duration_seconds_sum", phase="tasks") > 0
    assert value(after, "forgeflow_phase_duration_seconds_count", phase="done") == 0


async def test_readyz_is_healthy_with_everything_up(api):
    async with httpx.AsyncClient(base_url=api.url) as client:
        ready = await client.get("/readyz")
        alive = await client.get("/healthz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {
        "status": "healthy",
        "version": __version__,
        "components": {"database": "healthy", "temporal": "healthy"},
    }
    assert alive.status_code == 200


async def test_readyz_is_503_when_temporal_is_unreachable(settings: Settings):
    down = settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    async with LiveServer(down) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        started = time.monotonic()
        response = await client.get("/readyz")
        assert time.monotonic() - started < 5
        # /healthz only says the process is up.
        assert (await client.get("/healthz")).status_code == 200
    assert response.status_code == 503
    assert response.json() == {
        "status": "unhealthy",
        "version": __version__,
        "components": {"database": "healthy", "temporal": "unhealthy"},
    }


async def test_admin_stats_count_what_was_created(api, http, make_key, db: Database, settings: Settings):
    admin = make_key(scopes=["admin", "projects:create"])
    headers = {"X-API-Key": admin.key}
    before = (await http.get("/admin/stats", headers=headers)).json()
    for name in ("Stats One", "Stats Two"):
        assert (await http.post("/projects", json={"project_name": name}, headers=headers)).status_code == 201
    after = (await http.get("/admin/stats", headers=headers)).json()
    assert after["projects"]["total"] - before["projects"]["total"] == 2
    queued_before = before["projects"]["by_status"].get("queued", 0)
    assert after["projects"]["by_status"]["queued"] - queued_before == 2
    assert after["runs"]["total"] - before["runs"]["total"] == 0  # the workflow writes runs
    assert after["events"]["total"] >= before["events"]["total"]
    assert set(after["tasks"]) == {"total", "by_status", "attempts", "retries", "failures"}
    queue = after["queue"]
    assert queue["task_queue"] == settings.task_queue
    # No worker polls this test's queue; both workflows are open on it.
    assert queue["workflow_pollers"] == 0 and queue["activity_pollers"] == 0
    deadline = time.monotonic() + 10
    while queue["open_workflows"] != 2:
        assert time.monotonic() < deadline, queue
        await asyncio.sleep(0.2)
        queue = (await http.get("/admin/stats", headers=headers)).json()["queue"]
    # A legacy key holds every project scope, never admin (tests/api/test_scopes.py).
    assert (await http.get("/admin/stats", headers={"X-API-Key": make_key().key})).status_code == 403


async def test_admin_stats_need_the_admin_scope(http, make_key):
    reader = make_key(scopes=["projects:read", "projects:create", "projects:approve", "projects:cancel"])
    refused = await http.get("/admin/stats", headers={"X-API-Key": reader.key})
    assert refused.status_code == 403
    assert error_body(refused)["error"]["code"] == "insufficient_scope"
    assert refused.json()["error"]["details"]["required_scope"] == "admin"
    assert (await http.get("/admin/stats")).status_code == 401


async def test_admin_stats_see_pollers_and_survive_temporal_down(api, http, worker, make_key, settings: Settings):
    headers = {"X-API-Key": make_key(scopes=["admin"]).key}
    deadline = time.monotonic() + 10
    while not (queue := (await http.get("/admin/stats", headers=headers)).json()["queue"])["workflow_pollers"]:
        assert time.monotonic() < deadline, queue
        await asyncio.sleep(0.2)
    assert queue["activity_pollers"] >= 1
    down = settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    async with LiveServer(down) as server, httpx.AsyncClient(base_url=f"{server.url}/api/v1") as client:
        started = time.monotonic()
        response = await client.get("/admin/stats", headers=headers, timeout=30)
        assert time.monotonic() - started < 5
    assert response.status_code == 200, response.text
    assert response.json()["queue"] == {
        "task_queue": settings.task_queue,
        "open_workflows": None,
        "workflow_pollers": None,
        "activity_pollers": None,
    }
    assert response.json()["projects"]["total"] >= 0


async def test_worker_exports_temporal_sdk_metrics(settings: Settings, db: Database):
    address = f"127.0.0.1:{free_port()}"
    runtime = worker_runtime(settings.model_copy(update={"worker_metrics_address": address}))
    assert runtime is not None
    assert worker_runtime(settings.model_copy(update={"worker_metrics_address": ""})) is None
    # The address is taken now: a second worker on it runs without an exporter.
    assert worker_runtime(settings.model_copy(update={"worker_metrics_address": address})) is None
    client = await connect(settings, runtime=runtime)
    with ThreadPoolExecutor(max_workers=2) as executor:
        worker = build_worker(client, settings, db=db, executor=executor, activities=[])
        async with worker, httpx.AsyncClient(timeout=10) as http:
            deadline = time.monotonic() + 20
            while True:
                text = (await http.get(f"http://{address}/metrics")).text
                if "temporal_worker_start" in text and "temporal_request" in text:
                    break
                assert time.monotonic() < deadline, text[:2000]
                await asyncio.sleep(0.2)
    names = {family.name for family in text_string_to_metric_families(text)}
    assert any(name.startswith("temporal_") for name in names)
    assert settings.task_queue in text
