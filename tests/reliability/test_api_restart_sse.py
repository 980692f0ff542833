"""The API process killed under an open event stream: the client reconnects to the
restarted API with ``Last-Event-ID`` and gets every event once, in order."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx

from tests.reliability.harness import Api, eventually, make_api_key


async def read_stream(url: str, key: str, into: list[dict[str, Any]], last_event_id: int | None = None) -> None:
    """Collect the stream's events (as EventSource does: an event counts once its blank
    line arrived) until the server ends the stream; transport errors propagate."""
    headers = {"X-API-Key": key, "Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(30, read=60)) as http,
        http.stream("GET", url, headers=headers) as response,
    ):
        assert response.status_code == 200, await response.aread()
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line == "":
                if "id" in fields:
                    into.append({"id": int(fields["id"]), "type": fields["event"], "data": json.loads(fields["data"])})
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")


async def test_sse_resumes_across_an_api_restart_without_gap_or_duplicate(make_stack, sqlite_url):
    key = make_api_key(sqlite_url)
    stack = make_stack(sqlite_url, modules=20)
    await stack.start_temporal()
    stack.start_worker()
    await stack.start_api()
    async with Api(stack, key.key) as api:
        project_id = (await api.create())["id"]
        url = f"{stack.api_url}/api/v1/projects/{project_id}/events/stream"
        before: list[dict[str, Any]] = []
        reader = asyncio.create_task(read_stream(url, key.key, before))

        async def some_tasks_streamed() -> bool:
            assert not reader.done() or reader.exception() is None, reader
            return sum(e["type"] == "task_succeeded" for e in before) >= 3

        await eventually(some_tasks_streamed, 60, "task events on the stream", interval=0.02)
        assert stack.api is not None
        stack.api.kill()
        # The stream breaks with the process (an incomplete chunked body), never ends cleanly.
        with contextlib.suppress(httpx.TransportError):
            await asyncio.wait_for(reader, 30)
        assert before[-1]["type"] != "project_ready"

        # The generation went on meanwhile; the client reconnects once the API is back.
        await stack.start_api()
        after: list[dict[str, Any]] = []
        await asyncio.wait_for(read_stream(url, key.key, after, last_event_id=before[-1]["id"]), 120)
        assert after, "nothing was streamed after the restart"

        streamed = before + after
        ids = [e["id"] for e in streamed]
        assert ids == list(range(1, len(ids) + 1)), f"gap or duplicate around {before[-1]['id']}: {ids}"
        assert streamed[-1]["data"]["payload"] == {"status": "ready", "phase": "done"}
        # What was streamed is the event log itself, event by event.
        logged = await api.events(project_id)
        assert [e["data"] for e in streamed] == logged
        assert [e["type"] for e in streamed] == [e["type"] for e in logged]
