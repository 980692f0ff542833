"""Event streams as an attacker would use them (issue 13, finding 6): many streams from one
key, a key revoked or expiring mid-stream, other keys and tenants beside a key at its cap,
and many streams of one project costing one database poller."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import timedelta

import httpx
import pytest_asyncio
from sqlalchemy import event

from store.keys import create_key, revoke_key
from store.lifecycle import NewEvent, append_events
from store.models import utcnow
from tests.api.test_api_caches import app_state
from tests.support import LiveServer, error_body

READ_ONLY = ["projects:read"]


@pytest_asyncio.fixture
async def served(settings) -> AsyncIterator[tuple[LiveServer, httpx.AsyncClient]]:
    # Quick heartbeats: a stream that is still open shows it within a second.
    fast = settings.model_copy(update={"sse_heartbeat_seconds": 0.3})
    async with LiveServer(fast) as server, httpx.AsyncClient(base_url=f"{server.url}/api/v1", timeout=30) as http:
        yield server, http


class Stream:
    """One open SSE response and its lines."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()

    async def next_line(self, timeout: float = 10) -> str | None:
        """The next line, or None once the server has ended the stream."""
        async with asyncio.timeout(timeout):
            try:
                return await anext(self.lines)
            except StopAsyncIteration:
                return None

    async def ended(self, timeout: float) -> bool:
        """Whether the server ends the stream within ``timeout`` (lines before that are skipped)."""
        try:
            async with asyncio.timeout(timeout):
                async for _ in self.lines:
                    pass
            return True
        except TimeoutError:
            return False


async def open_stream(stack: AsyncExitStack, http: httpx.AsyncClient, project_id: int, key: str) -> Stream:
    url = f"/projects/{project_id}/events/stream"
    response = await stack.enter_async_context(http.stream("GET", url, headers={"X-API-Key": key}))
    if response.status_code == 200:
        stream = Stream(response)
        assert await stream.next_line() == "retry: 2000"
        return stream
    await response.aread()
    raise StreamRefused(response)


class StreamRefused(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def try_open(stack: AsyncExitStack, http: httpx.AsyncClient, project_id: int, key: str) -> Stream | int:
    try:
        return await open_stream(stack, http, project_id, key)
    except StreamRefused as refused:
        return refused.response.status_code


async def test_a_key_holds_at_most_four_streams_and_others_are_unaffected(served, settings, project_row, make_key):
    server, http = served
    assert settings.max_streams_per_key == 4  # the agent-runner API's limit is the default
    owner_key, project_id = project_row()
    attacker = make_key(owner_key.owner, scopes=READ_ONLY).key
    async with AsyncExitStack() as stack:
        # Twenty at once from one key: exactly four get through.
        outcomes = await asyncio.gather(*(try_open(stack, http, project_id, attacker) for _ in range(20)))
        opened = [o for o in outcomes if isinstance(o, Stream)]
        assert len(opened) == 4 and sorted(o for o in outcomes if isinstance(o, int)) == [429] * 16
        async with http.stream("GET", f"/projects/{project_id}/events/stream", headers={"X-API-Key": attacker}) as r:
            await r.aread()
            refused = r
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) > 0
        body = error_body(refused)["error"]
        assert body["code"] == "too_many_streams" and body["category"] == "quota" and body["retryable"] is True
        assert body["details"]["limit"] == 4
        # The key still reads everything else; another key of the same owner still streams,
        # and so does another tenant on its own project.
        events = await http.get(f"/projects/{project_id}/events", headers={"X-API-Key": attacker})
        assert events.status_code == 200
        sibling = await open_stream(stack, http, project_id, make_key(owner_key.owner, scopes=READ_ONLY).key)
        tenant_key, tenant_project = project_row()
        tenant = await open_stream(stack, http, tenant_project, tenant_key.key)
        assert await sibling.next_line() is not None and await tenant.next_line() is not None
        # The attacker's streams are alive too: the cap refuses new ones, it ends none.
        assert all([await s.next_line() is not None for s in opened])
        # A stream the client closes frees its slot.
        await opened[0].response.aclose()
        deadline = asyncio.get_running_loop().time() + 10
        while not isinstance(again := await try_open(stack, http, project_id, attacker), Stream):
            assert again == 429 and asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.1)
    openapi = (await http.get(f"{server.url}/openapi.json")).json()
    stream_doc = openapi["paths"]["/api/v1/projects/{project_id}/events/stream"]["get"]["responses"]["429"]
    assert "too_many_streams" in stream_doc["description"]


async def test_streams_end_soon_after_their_key_is_revoked(served, settings, db, project_row, make_key):
    _, http = served
    owner_key, project_id = project_row()
    doomed = make_key(owner_key.owner, scopes=READ_ONLY)
    async with AsyncExitStack() as stack:
        streams = [await open_stream(stack, http, project_id, doomed.key) for _ in range(2)]
        bystander = await open_stream(stack, http, project_id, owner_key.key)
        with db.session() as session:  # as `forgeflow keys revoke` does, from another process
            assert revoke_key(session, key_id=doomed.key_id)
        bound = settings.stream_key_check_seconds + 8  # "within a few seconds", generously
        assert all(await asyncio.gather(*(s.ended(bound) for s in streams)))
        # Another key's stream of the same project goes on (its heartbeats keep coming).
        assert await bystander.next_line() is not None and await bystander.next_line() is not None
        assert not await bystander.ended(1)


async def test_a_revoked_keys_stream_is_cut_even_if_its_client_stopped_reading(served, db, project_row):
    server, _ = served
    key, project_id = project_row()
    with db.session(write_lock=True) as session:  # 16 MB of events: far more than socket buffers hold
        events = [NewEvent(type="note_added", key=f"n{i}", payload={"text": "x" * 2000}) for i in range(8000)]
        append_events(session, project_id=project_id, events=events, at=utcnow())
    host, port = server.url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
        sock.connect((host, int(port)))
        request = f"GET /api/v1/projects/{project_id}/events/stream HTTP/1.1\r\nHost: x\r\nX-API-Key: {key.key}\r\n\r\n"
        sock.sendall(request.encode())
        hub = app_state(server).streams
        async with asyncio.timeout(10):
            while key.key_id not in hub.by_key:
                await asyncio.sleep(0.05)
        await asyncio.sleep(1)  # the server is now blocked sending to a client that reads nothing
        with db.session() as session:
            assert revoke_key(session, key_id=key.key_id)
        deadline = asyncio.get_running_loop().time() + 10
        while hub.by_key:  # the slot is freed: the response was cut off
            assert asyncio.get_running_loop().time() < deadline, "a stalled stream outlived its key"
            await asyncio.sleep(0.1)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(10):  # and the connection is closed: what was sent, then EOF
            while await loop.sock_recv(sock, 1 << 20):
                pass


async def test_a_stream_ends_when_its_key_expires(served, db, project_row):
    _, http = served
    owner_key, project_id = project_row()
    with db.session() as session:
        expiring = create_key(
            session,
            owner_name=owner_key.owner,
            email="",
            project_quota=200,
            scopes=READ_ONLY,
            expires_at=utcnow() + timedelta(seconds=3),
        )
    async with AsyncExitStack() as stack:
        stream = await open_stream(stack, http, project_id, expiring.key)
        assert await stream.ended(3 + 8)
    assert (await http.get(f"/projects/{project_id}", headers={"X-API-Key": expiring.key})).status_code == 401


async def test_streams_of_one_project_share_one_poller(served, db, project_row, make_key):
    server, http = served
    owner_key, project_id = project_row()
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    async def statements_in(seconds: float) -> int:
        statements.clear()
        await asyncio.sleep(seconds)
        return len(statements)

    engine = app_state(server).db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        async with AsyncExitStack() as stack:
            first = await open_stream(stack, http, project_id, owner_key.key)
            one = await statements_in(3)
            keys = [make_key(owner_key.owner, scopes=READ_ONLY).key for _ in range(10)]
            streams = [first] + [await open_stream(stack, http, project_id, k) for k in keys for _ in range(4)]
            await asyncio.sleep(0.5)  # let the opening requests' own reads finish
            many = await statements_in(3)
            # Forty streams poll as one: each polling on its own would be 40 times the queries.
            assert one > 0 and many <= 2 * one + 10, (one, many)
            # And every one of them gets each new event, in order.
            with db.session(write_lock=True) as session:
                seqs = append_events(
                    session,
                    project_id=project_id,
                    events=[NewEvent(type="note_added", key=f"n{i}", payload={"i": i}) for i in range(3)],
                    at=utcnow(),
                )

            async def ids_seen(stream: Stream) -> list[int]:
                seen: list[int] = []
                while len(seen) < len(seqs):
                    line = await stream.next_line()
                    assert line is not None
                    if line.startswith("id: "):
                        seen.append(int(line.removeprefix("id: ")))
                return seen

            assert await asyncio.gather(*(ids_seen(s) for s in streams)) == [seqs] * len(streams)
    finally:
        event.remove(engine, "before_cursor_execute", count)
