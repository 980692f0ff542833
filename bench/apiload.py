"""Figure 4: the API's read endpoints under 50 concurrent connections, against a bare
FastAPI app returning the same JSON from memory, both loaded from a separate process."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from bench.loadgen import run_load
from bench.stack import Proc, Stack, peak_rss_mb, wait_for_port

CONNECTIONS = 50


async def api_figure(
    stack: Stack,
    api: Proc,
    http: httpx.AsyncClient,
    key: str,
    project_id: int,
    seconds: float,
    warmup: int = 1,
    status_cache_off: bool = False,
) -> dict[str, Any]:
    """Requests/s and p50/p99 of GET /projects/{id}/status and GET /projects, forgeflow vs bare."""
    status_path = f"/api/v1/projects/{project_id}/status"
    list_path = "/api/v1/projects"
    bodies = {
        "status": (await http.get(f"/projects/{project_id}/status")).json(),
        "projects": (await http.get("/projects")).json(),
    }
    body_file = stack.run_dir / "bare-api-bodies.json"
    body_file.write_text(json.dumps(bodies))
    bare = stack.start_bare_api(body_file)
    results: dict[str, Any] = {"connections": CONNECTIONS, "seconds": seconds}
    try:
        await asyncio.to_thread(wait_for_port, bare.port or 0, bare)
        async with httpx.AsyncClient() as probe:
            for path, name in ((status_path, "status"), (list_path, "projects")):
                same = (await probe.get(bare.url + path)).json() == bodies[name]
                if not same:
                    raise RuntimeError(f"the bare API's {name} body differs from forgeflow's")
        headers = {"X-API-Key": key}
        for figure, path in (("status", status_path), ("list", list_path)):
            results[figure] = {}
            for side, proc in (("forgeflow", api), ("bare", bare)):
                url = proc.url + path
                if warmup:  # a short warm-up, then the measured run
                    await asyncio.to_thread(run_load, url, headers, connections=CONNECTIONS, seconds=1)
                results[figure][side] = await asyncio.to_thread(
                    run_load, url, headers, connections=CONNECTIONS, seconds=seconds
                )
        if status_cache_off:
            # The same API reading every status from the database: what a poll of a project
            # nobody else polls costs (the micro-cache only helps projects polled by many).
            plain = stack.start_api("api-no-status-cache", FORGEFLOW_STATUS_CACHE_SECONDS="0")
            try:
                await asyncio.to_thread(wait_for_port, plain.port or 0, plain)
                url = plain.url + status_path
                if warmup:
                    await asyncio.to_thread(run_load, url, headers, connections=CONNECTIONS, seconds=1)
                results["status"]["forgeflow_status_cache_off"] = await asyncio.to_thread(
                    run_load, url, headers, connections=CONNECTIONS, seconds=seconds
                )
            finally:
                stack.stop(plain)
        results["bare_api_peak_rss_mb"] = peak_rss_mb(bare.pid)
    finally:
        stack.stop(bare)
    return results
