"""PostgreSQL unreachable mid-run, through a TCP proxy the test cuts and restores (the
real server stays up for the other tests): the API answers 503 retryable_error, never
500; the workflows keep retrying their writes; once it is back every run converges to
ready with an event log that has lost and repeated nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from sqlalchemy.engine import make_url
from temporalio.api.enums.v1 import EventType

from tests.reliability.harness import Api, assert_event_log_sound, make_api_key, max_activity_attempt
from workflows.types import RECORD_PROJECTION, ApprovalUpdate

# How long the database stays unreachable: long enough for a task that spent its retries on
# it to be on its fourth attempt (they come 1, 2, 4, 8 s apart; five in all).
OUTAGE_SECONDS = 6


class CuttableProxy:
    """127.0.0.1:<port> → the PostgreSQL server. ``cut()`` drops every open connection and
    closes each new one at once (the server "went away"); ``restore()`` forwards again."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.is_cut = False
        self.refused = 0
        self._open: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.is_cut:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._open |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._open.discard(writer)
            writer.transport.abort()

    def cut(self) -> None:
        self.is_cut = True
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    def restore(self) -> None:
        self.is_cut = False

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)


def projection_attempts(history: object) -> list[int]:
    """The attempt of every record_projection local activity, from its history marker."""
    attempts = []
    for event in history.events:  # type: ignore[attr-defined]
        if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
            continue
        for payload in event.marker_recorded_event_attributes.details["data"].payloads:
            marker = json.loads(payload.data)
            if marker.get("activity_type") == RECORD_PROJECTION:
                attempts.append(marker["attempt"])
    return attempts


async def test_database_outage_mid_run_is_503_then_converges(make_stack, postgres_schema_url):
    key = make_api_key(postgres_schema_url)  # migrated directly, not through the proxy
    url = make_url(postgres_schema_url)
    proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        # A heartbeat timeout that a loaded machine never misses: any retry is the outage's.
        stack = make_stack(proxied, modules=20, task_heartbeat_timeout="PT10S")
        await stack.start_temporal()
        stack.start_worker()
        await stack.start_api()
        async with Api(stack, key.key) as api:
            # One run waits at the approval gate, one runs its tasks.
            gated = (await api.create(project_name="Gated", require_approval=True))["id"]
            await api.wait_status(gated, "awaiting_approval")
            running = (await api.create())["id"]
            await api.wait_events(running, "task_succeeded", 3)

            proxy.cut()
            cut_at = time.monotonic()
            # The API: every request that needs the database is a retryable 503, never a 500.
            response = await api.http.post("/projects", json={"project_name": "During", "template": "fanout"})
            assert response.status_code == 503, response.text
            error = response.json()["error"]
            assert error["code"] == "retryable_error" and error["retryable"] is True
            assert error["details"]["retry_guidance"]
            assert int(response.headers["retry-after"]) > 0
            listing = await api.http.get("/projects")
            assert listing.status_code == 503, listing.text
            assert listing.json()["error"]["code"] == "retryable_error"
            approve = await api.http.post(f"/projects/{gated}/approve", json={})
            assert approve.status_code == 503, approve.text
            # A script approves through Temporal directly: the workflow must now store
            # spec_approved and its new status while the database is gone.
            await (await stack.workflow(gated)).signal("approve", ApprovalUpdate(notes="during the outage"))

            await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut_at)))
            assert proxy.refused > 0, "nothing tried the database during the outage"
            assert stack.worker is not None and stack.worker.alive
            proxy.restore()

            for project_id in (running, gated):
                await api.wait_status(project_id, "ready", timeout=120)
                tasks = await api.tasks(project_id)
                assert len(tasks) == stack.modules and all(t["status"] == "succeeded" for t in tasks), tasks
                assert_event_log_sound(await api.events(project_id), [t["id"] for t in tasks])
            approvals = await api.events(gated, type="spec_approved")
            assert [e["payload"]["notes"] for e in approvals] == ["during the outage"]
        # No request failed after its response had started (which drops the connection).
        assert stack.api is not None
        served = stack.api.log.read_text(errors="replace")
        assert "Exception in ASGI application" not in served and "unhandled error" not in served

        # The gated run's first write after the approval was retried until it landed.
        history = await (await stack.workflow(gated)).fetch_history()
        assert max(projection_attempts(history)) >= 2
        # The running task waited for the database instead of spending its retries on it (a
        # quarter of a minute of outage would have exhausted them and failed the project).
        assert await max_activity_attempt(await stack.workflow(running)) == 1
    finally:
        await proxy.close()
