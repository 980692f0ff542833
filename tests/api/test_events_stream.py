"""The SSE stream: ids, heartbeats, resume after a dropped connection, the end."""

from __future__ import annotations

import json

import httpx

from tests.api.test_lifecycle import GATED, wait_for_status
from tests.support import LiveServer


async def read_frames(response: httpx.Response, *, stop_after: int | None = None, heartbeats: list | None = None):
    """Parse SSE frames until the stream ends (or ``stop_after`` events were read)."""
    events, frame = [], {}
    async for line in response.aiter_lines():
        if line.startswith(":"):
            if heartbeats is not None:
                heartbeats.append(line)
            continue
        if line == "":
            if "id" in frame:
                events.append({"id": int(frame["id"]), "event": frame["event"], "data": json.loads(frame["data"])})
                if stop_after is not None and len(events) >= stop_after:
                    return events
            frame = {}
            continue
        field, _, value = line.partition(":")
        frame[field] = value.lstrip(" ")
    return events


async def test_stream_resumes_without_gap_or_duplicate(settings, worker, make_key):
    auth = {"X-API-Key": make_key().key}
    fast = settings.model_copy(update={"sse_heartbeat_seconds": 0.3})
    async with LiveServer(fast) as server, httpx.AsyncClient(base_url=f"{server.url}/api/v1", timeout=30) as http:
        project_id = (await http.post("/projects", json={**GATED, "ask_questions": False}, headers=auth)).json()[
            "project"
        ]["id"]
        await wait_for_status(http, project_id, auth, "awaiting_approval")
        url = f"/projects/{project_id}/events/stream"
        heartbeats: list[str] = []
        async with http.stream("GET", url, headers=auth) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            first = await read_frames(response, stop_after=3)
        # Dropped after three events; resume from the last one seen.
        await http.post(f"/projects/{project_id}/approve", json={}, headers=auth)
        resume = {**auth, "Last-Event-ID": str(first[-1]["id"])}
        async with http.stream("GET", url, headers=resume) as response:
            rest = await read_frames(response, heartbeats=heartbeats)
        listed = (await http.get(f"/projects/{project_id}/events", params={"limit": 1000}, headers=auth)).json()
        ids = [e["id"] for e in first + rest]
        assert ids == [e["id"] for e in listed["events"]]  # no gap, no duplicate, same order
        assert rest[-1]["event"] == "status_changed" and rest[-1]["data"]["payload"]["status"] == "ready"
        assert first[0]["data"]["type"] == first[0]["event"]
        # ?after= works the same, and a finished project's stream just ends.
        async with http.stream("GET", url, params={"after": ids[-3]}, headers=auth) as response:
            tail = await read_frames(response)
        assert [e["id"] for e in tail] == ids[-2:]
        # While nothing happens, comments keep the connection alive.
        other = (await http.post("/projects", json={**GATED, "ask_questions": False}, headers=auth)).json()["project"][
            "id"
        ]
        await wait_for_status(http, other, auth, "awaiting_approval")
        idle: list[str] = []
        async with http.stream("GET", f"/projects/{other}/events/stream", headers=auth) as response:
            async for line in response.aiter_lines():
                if line.startswith(": heartbeat"):
                    idle.append(line)
                    break
        assert idle
        bad = await http.get(url, headers={**auth, "Last-Event-ID": "abc"})
        assert bad.status_code == 400
