"""Figure 6, uncached reads: many ready projects of one owner, every read from the database.

The API figure (bench/apiload.py) polls one project, which the 0.1 s status cache serves;
real clients each poll their own project every few seconds, so their polls miss it. Here
1,000 projects are seeded for an owner of their own, the API runs with its status cache
off, and every request of 50 connections picks a random project (status) or a random page
of 20 (list). The baseline is the bare FastAPI app holding the same projects in memory
(bench/bare_api.py), checked to answer the same JSON for a sample of ids and pages.
"""

from __future__ import annotations

import asyncio
import json
import random
from datetime import timedelta
from typing import Any

import httpx

from bench.loadgen import run_load
from bench.stack import Proc, Stack, wait_for_port

CONNECTIONS = 50
PAGE = 20
OWNER = "bench-reads"
# Every cache of read results off. The identity cache (auth_cache_seconds) stays: it holds
# no read result, and one key drives the load, as one client's many polls would.
UNCACHED = {"FORGEFLOW_STATUS_CACHE_SECONDS": "0"}


def seed_ready_projects(database_url: str, key: str, count: int) -> list[int]:
    """``count`` ready projects for the key's owner, written with the store's own functions
    (the create the API makes, the ready write the workflow makes), from requests the API's
    normalisation turns into the payload it would store. Returns their ids."""
    from api.schemas import ProjectCreate
    from api.services import normalise_request
    from bench.figures import all_flags_request
    from forgeflow.settings import Settings
    from store.db import Database
    from store.keys import authenticate
    from store.models import utcnow
    from store.projects import Projection, apply_projection, create_project

    db = Database(database_url)
    settings = Settings(database_url=database_url)
    ids: list[int] = []
    try:
        with db.session(write_lock=True) as session:
            identity = authenticate(session, plaintext=key)
            assert identity is not None
            for n in range(count):
                request = normalise_request(ProjectCreate.model_validate(all_flags_request(n)), identity, settings)
                project = create_project(
                    session,
                    owner_id=identity.owner_id,
                    quota=identity.project_quota,
                    name=request.payload["project_name"],
                    slug=request.slug,
                    description=request.payload.get("project_description", ""),
                    template=request.template.id,
                    input_payload=request.payload,
                )
                start = utcnow()
                done = start + timedelta(milliseconds=200)
                ready = Projection(
                    project_id=project.id,
                    seq=5,
                    status="ready",
                    phase="ready",
                    at=done,
                    started_at=start,
                    finished_at=done,
                    artifact_key=f"projects/{project.id}/{request.slug}.zip",
                    artifact_sha256="0" * 64,
                    artifact_size=40_000,
                    run_number=1,
                )
                apply_projection(session, projection=ready)
                ids.append(project.id)
        if not db.is_sqlite:
            # What autovacuum does within a minute of such a write: the planner's statistics,
            # and the dead row versions of the ready writes gone. (SQLite gathers none unless
            # asked, and forgeflow never asks.)
            with db.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE projects")
    finally:
        db.dispose()
    return ids


async def _catalog(http: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
    """Every project of the owner as the list shows it, newest first."""
    projects: list[dict[str, Any]] = []
    while len(projects) < count:
        response = await http.get("/api/v1/projects", params={"limit": 100, "offset": len(projects)})
        response.raise_for_status()
        page = response.json()["projects"]
        if not page:
            break
        projects += page
    return projects


async def _check_same(api: Proc, bare: Proc, headers: dict[str, str], ids: list[int], offsets: list[int]) -> None:
    """The bare app answers what forgeflow answers, for a sample of ids and pages."""
    pick = random.Random(0)
    paths = [f"/api/v1/projects/{i}/status" for i in pick.sample(ids, min(20, len(ids)))]
    paths += [f"/api/v1/projects?limit={PAGE}&offset={o}" for o in pick.sample(offsets, min(20, len(offsets)))]
    async with httpx.AsyncClient(headers=headers) as http:
        for path in paths:
            ours, theirs = await http.get(api.url + path), await http.get(bare.url + path)
            if ours.status_code != 200 or ours.json() != theirs.json():
                raise RuntimeError(f"the bare API's answer to {path} differs from forgeflow's: {ours.text[:300]}")


async def _load(url: str, headers: dict[str, str], paths: list[str], seconds: float, warmup: int) -> dict[str, Any]:
    if warmup:  # a short warm-up, then the measured run
        await asyncio.to_thread(run_load, url, headers, connections=CONNECTIONS, seconds=1, paths=paths)
    return await asyncio.to_thread(run_load, url, headers, connections=CONNECTIONS, seconds=seconds, paths=paths)


async def reads_figure(stack: Stack, projects: int, seconds: float, warmup: int = 1) -> dict[str, Any]:
    """Requests/s and p50/p99 of status and list over ``projects`` projects, forgeflow with
    its read caches off against the bare app."""
    key, _ = stack.create_key(OWNER)
    ids = await asyncio.to_thread(seed_ready_projects, stack.database_url, key, projects)
    headers = {"X-API-Key": key}
    offsets = list(range(max(1, projects - PAGE + 1)))
    paths = {
        "status": [f"/api/v1/projects/{i}/status" for i in ids],
        "list": [f"/api/v1/projects?limit={PAGE}&offset={o}" for o in offsets],
    }
    results: dict[str, Any] = {"connections": CONNECTIONS, "seconds": seconds, "projects": projects, "page": PAGE}
    api = stack.start_api("api-uncached", **UNCACHED)
    bare = None
    try:
        await asyncio.to_thread(wait_for_port, api.port or 0, api)
        async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=60) as http:
            catalog = await _catalog(http, projects)
        body_file = stack.run_dir / "bare-api-catalog.json"
        body_file.write_text(json.dumps({"catalog": catalog}))
        bare = stack.start_bare_api(body_file, "bare-api-catalog")
        await asyncio.to_thread(wait_for_port, bare.port or 0, bare)
        await _check_same(api, bare, headers, ids, offsets)
        for figure in ("status", "list"):
            results[figure] = {}
            for side, proc in (("forgeflow", api), ("bare", bare)):
                results[figure][side] = await _load(proc.url, headers, paths[figure], seconds, warmup)
    finally:
        stack.stop(api)
        if bare is not None:
            stack.stop(bare)
    return results
