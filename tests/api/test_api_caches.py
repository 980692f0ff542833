"""The per-process caches of the API: identities (revocation), status bodies (TTL, owners,
writes through the API) and the answer from memory, which must equal the route's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
import pytest_asyncio
from sqlalchemy import update

import api.ratelimit
import api.status_cache
from api.status_cache import StatusCache
from store.keys import revoke_key
from store.models import Project
from tests.api.conftest import T0
from tests.api.test_observability import scrape, value
from tests.support import LiveServer, error_body

STATUS_ROUTE = "/api/v1/projects/{project_id}/status"


async def serve(settings, **changes: Any) -> AsyncIterator[tuple[LiveServer, httpx.AsyncClient]]:
    async with (
        LiveServer(settings.model_copy(update=changes)) as server,
        httpx.AsyncClient(base_url=f"{server.url}/api/v1", timeout=30) as http,
    ):
        yield server, http


def app_state(server: LiveServer) -> Any:
    return server.server.config.app.state


@pytest.fixture
def clock(monkeypatch):
    """The status cache's clock, moved by the test only: nothing expires by itself."""
    now = [1000.0]
    monkeypatch.setattr(api.status_cache, "clock", lambda: now[0])
    return now


@pytest_asyncio.fixture
async def long_cache(settings, clock) -> AsyncIterator[tuple[LiveServer, httpx.AsyncClient]]:
    """Caches that outlive any test step, so that what is cached is seen to be."""
    async for pair in serve(settings, status_cache_seconds=1.0, auth_cache_seconds=300):
        yield pair


async def create(http: httpx.AsyncClient, key) -> int:
    response = await http.post("/projects", json={"project_name": "Cached"}, headers={"X-API-Key": key.key})
    assert response.status_code == 201, response.text
    return int(response.json()["project"]["id"])


def set_status(db, project_id: int, status: str) -> None:
    """A write of the workflow's, which no API process sees happen."""
    with db.session() as session:
        session.execute(update(Project).where(Project.id == project_id).values(status=status))


async def test_a_revoked_key_is_trusted_until_forgotten_or_expired(settings, make_key, db):
    key = make_key()
    auth = {"X-API-Key": key.key}
    # No rate limit: no lease to claim, which would authenticate the key again.
    async for server, http in serve(settings, auth_cache_seconds=300, rate_limit_per_minute=0):
        assert (await http.get("/projects", headers=auth)).status_code == 200
        with db.session() as session:
            assert revoke_key(session, key_id=key.key_id)
        # Revoked by another process (the CLI): this one trusts the key for its cache's lifetime...
        assert (await http.get("/projects", headers=auth)).status_code == 200
        # ...unless it is told, as a revocation through this process would tell it.
        app_state(server).gatekeeper.forget_key(key.key_id)
        response = await http.get("/projects", headers=auth)
        assert response.status_code == 401 and error_body(response)["error"]["code"] == "auth_required"


async def test_a_revocation_is_noticed_when_the_lease_runs_out(settings, make_key, db):
    key = make_key()
    auth = {"X-API-Key": key.key}
    # Limit 3: leases of one hit, so each request goes back to the database and re-authenticates.
    async for _, http in serve(settings, auth_cache_seconds=300, rate_limit_per_minute=3):
        assert (await http.get("/projects", headers=auth)).status_code == 200
        with db.session() as session:
            revoke_key(session, key_id=key.key_id)
        assert (await http.get("/projects", headers=auth)).status_code == 401


async def test_without_the_identity_cache_a_revocation_is_immediate(settings, make_key, db):
    key = make_key()
    auth = {"X-API-Key": key.key}
    async for _, http in serve(settings, auth_cache_seconds=0):
        assert (await http.get("/projects", headers=auth)).status_code == 200
        with db.session() as session:
            revoke_key(session, key_id=key.key_id)
        assert (await http.get("/projects", headers=auth)).status_code == 401


async def test_a_status_at_rest_lags_at_most_the_ttl(settings, make_key, db, clock):
    key = make_key()
    auth = {"X-API-Key": key.key}
    async for _, http in serve(settings, status_cache_seconds=0.5):
        project_id = await create(http, key)
        path = f"/projects/{project_id}/status"
        set_status(db, project_id, "awaiting_approval")
        assert (await http.get(path, headers=auth)).json()["status"] == "awaiting_approval"
        set_status(db, project_id, "generating")  # approved by a script's signal, elsewhere
        clock[0] += 0.49
        assert (await http.get(path, headers=auth)).json()["status"] == "awaiting_approval"
        clock[0] += 0.01
        assert (await http.get(path, headers=auth)).json()["status"] == "generating"


@pytest.mark.parametrize("moving", ["queued", "generating"])
async def test_a_status_in_motion_is_never_kept(long_cache, make_key, db, moving):
    server, http = long_cache
    key = make_key()
    auth = {"X-API-Key": key.key}
    project_id = await create(http, key)
    path = f"/projects/{project_id}/status"
    set_status(db, project_id, moving)
    assert (await http.get(path, headers=auth)).json()["status"] == moving
    assert app_state(server).status_cache.cached(owner_id=key.owner_id, project_id=project_id) is None
    # The workflow stores ready: the very next poll sees it, however long the cache lives.
    set_status(db, project_id, "ready")
    assert (await http.get(path, headers=auth)).json()["status"] == "ready"
    assert app_state(server).status_cache.cached(owner_id=key.owner_id, project_id=project_id) is not None


async def test_zero_disables_the_status_cache(settings, make_key, db):
    key = make_key()
    auth = {"X-API-Key": key.key}
    async for _, http in serve(settings, status_cache_seconds=0):
        project_id = await create(http, key)
        assert (await http.get(f"/projects/{project_id}/status", headers=auth)).json()["status"] == "queued"
        set_status(db, project_id, "generating")
        assert (await http.get(f"/projects/{project_id}/status", headers=auth)).json()["status"] == "generating"


async def test_a_cached_status_is_served_to_its_owner_only(long_cache, make_key, db):
    server, http = long_cache
    owner, stranger = make_key(), make_key()
    sibling_without_read = make_key(owner.owner, scopes=["projects:create"])
    project_id = await create(http, owner)
    set_status(db, project_id, "awaiting_approval")
    path = f"/projects/{project_id}/status"
    assert (await http.get(path, headers={"X-API-Key": owner.key})).status_code == 200
    assert app_state(server).status_cache.cached(owner_id=owner.owner_id, project_id=project_id) is not None
    foreign = await http.get(path, headers={"X-API-Key": stranger.key})
    assert foreign.status_code == 404
    assert error_body(foreign)["error"] == {
        "code": "project_not_found",
        "category": "validation",
        "message": "Project not found.",
        "retryable": False,
        "details": {"project_id": project_id},
    }
    refused = await http.get(path, headers={"X-API-Key": sibling_without_read.key})
    assert refused.status_code == 403
    assert refused.json()["error"]["details"]["required_scope"] == "projects:read"
    assert (await http.get(path, headers={"X-API-Key": owner.key})).status_code == 200


async def test_a_write_through_the_api_drops_the_cached_status(long_cache, make_key, db):
    _, http = long_cache
    key = make_key()
    auth = {"X-API-Key": key.key}
    project_id = await create(http, key)
    path = f"/projects/{project_id}/status"
    set_status(db, project_id, "awaiting_approval")
    assert (await http.get(path, headers=auth)).json()["status"] == "awaiting_approval"
    set_status(db, project_id, "failed")  # terminal: the delete archives without Temporal
    assert (await http.get(path, headers=auth)).json()["status"] == "awaiting_approval"  # cached
    renamed = await http.patch(f"/projects/{project_id}", json={"name": "Renamed"}, headers=auth)
    assert renamed.status_code == 200, renamed.text
    assert (await http.get(path, headers=auth)).json()["status"] == "failed"
    assert (await http.delete(f"/projects/{project_id}", headers=auth)).status_code == 200
    assert (await http.get(path, headers=auth)).status_code == 404


async def test_the_answer_from_memory_is_the_routes_answer(long_cache, make_key, monkeypatch, db):
    server, http = long_cache
    # A still clock for the limiter too: X-RateLimit-Reset counts whole seconds.
    monkeypatch.setattr(api.ratelimit, "clock", lambda: T0)
    key = make_key()
    auth = {"X-API-Key": key.key}
    project_id = await create(http, key)
    set_status(db, project_id, "ready")
    path = f"/projects/{project_id}/status"
    _, before = await scrape(server.url)
    first = await http.get(path, headers=auth)  # the route reads and fills the cache
    second = await http.get(path, headers=auth)  # answered from memory
    _, after = await scrape(server.url)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    for name in ("content-type", "content-length", "x-ratelimit-limit", "x-ratelimit-reset"):
        assert first.headers[name] == second.headers[name], name
    remaining = int(first.headers["x-ratelimit-remaining"])
    assert int(second.headers["x-ratelimit-remaining"]) == remaining - 1
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    labels = {"method": "GET", "route": STATUS_ROUTE, "status": "200"}
    counted = value(after, "forgeflow_http_requests_total", **labels) - value(
        before, "forgeflow_http_requests_total", **labels
    )
    assert counted == 2


class SlowReads:
    """Stands in for the database: each read waits until the test lets it finish."""

    def __init__(self, at_rest: bool = True) -> None:
        self.release = anyio.Event()
        self.calls = 0
        self.at_rest = at_rest

    async def run(self, read: Any, owner_id: int, project_id: int) -> tuple[bytes, bool]:
        self.calls += 1
        await self.release.wait()
        return b'{"status":"queued"}', self.at_rest


async def polls(cache: StatusCache, reads: SlowReads, during: Any = None) -> list[bytes]:
    results: list[bytes] = []

    async def poll() -> None:
        results.append(await cache.body(owner_id=1, project_id=7))

    async with anyio.create_task_group() as group:
        group.start_soon(poll)
        group.start_soon(poll)
        while reads.calls == 0:
            await anyio.sleep(0.01)
        if during is not None:
            during()
        reads.release.set()
    return results


@pytest.mark.parametrize("at_rest", [True, False])
async def test_concurrent_polls_of_a_project_make_one_read(clock, at_rest):
    reads = SlowReads(at_rest)
    cache = StatusCache(reads, ttl=1.0)  # type: ignore[arg-type]
    assert await polls(cache, reads) == [b'{"status":"queued"}'] * 2
    assert reads.calls == 1
    # Kept only at rest: in motion, the next poll reads again.
    assert (cache.cached(owner_id=1, project_id=7) is not None) == at_rest


async def test_a_read_that_overlaps_a_write_is_not_kept(clock):
    reads = SlowReads()
    cache = StatusCache(reads, ttl=1.0)  # type: ignore[arg-type]
    # A write lands while the first read runs: its body is answered but not kept, so the
    # second poll, which waited for it, reads again (after the write: that one is kept).
    assert await polls(cache, reads, during=lambda: cache.invalidate(7)) == [b'{"status":"queued"}'] * 2
    assert reads.calls == 2
