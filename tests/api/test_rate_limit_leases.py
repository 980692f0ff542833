"""Rate limits counted from leases: each API process claims blocks of a key's per-minute
budget from the database counter and hands them out from memory. The limit holds across
processes; small limits stay exact (see test_rate_limit.py for the contract)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import select

from api.ratelimit import LEASE_DIVISOR
from api.status_middleware import StatusCacheMiddleware
from store.models import RateLimitWindow
from store.ratelimit import claim, window_start
from tests.api.conftest import T0
from tests.support import LiveServer, error_body


def window_hits(db, key_id: int) -> int:
    with db.session() as session:
        stmt = select(RateLimitWindow.hits).where(
            RateLimitWindow.key_id == key_id, RateLimitWindow.window_start == window_start(T0)
        )
        return session.scalars(stmt).one()


def test_claims_hand_out_disjoint_ranges_within_the_limit(db, make_key):
    key = make_key()
    claims = []
    for size in (4, 4, 4):
        with db.session(write_lock=True) as session:
            claims.append(claim(session, key_id=key.key_id, limit=10, size=size, now=T0))
    assert [(c.first, c.last, c.spent) for c in claims] == [(1, 4, False), (5, 8, False), (9, 10, True)]
    with db.session(write_lock=True) as session:
        late = claim(session, key_id=key.key_id, limit=10, size=4, now=T0 + 1)
    assert late.first > late.last and late.spent  # nothing left this window
    with db.session(write_lock=True) as session:
        fresh = claim(session, key_id=key.key_id, limit=10, size=4, now=T0 + 60)
    assert (fresh.first, fresh.last, fresh.spent) == (1, 4, False)
    with db.session() as session:
        windows = session.scalars(select(RateLimitWindow.window_start).where(RateLimitWindow.key_id == key.key_id))
        assert list(windows) == [window_start(T0 + 60)]  # the first claim of a window prunes


async def test_a_busy_key_claims_growing_blocks(settings, make_key, db, clock):
    key = make_key()
    limit = 600  # blocks of 1, 2, 4, 8, then limit // LEASE_DIVISOR = 12
    assert limit // LEASE_DIVISOR == 12
    async with (
        LiveServer(settings.model_copy(update={"rate_limit_per_minute": limit})) as server,
        httpx.AsyncClient(base_url=f"{server.url}/api/v1", timeout=60) as http,
    ):
        remaining = [
            int((await http.get("/projects?limit=1", headers={"X-API-Key": key.key})).headers["x-ratelimit-remaining"])
            for _ in range(30)
        ]
    assert remaining == list(range(limit - 1, limit - 31, -1))  # one process: exact
    # 30 requests, six claims (1 + 2 + 4 + 8 + 12 + 12): the database holds the claimed 39.
    assert window_hits(db, key.key_id) == 39


async def test_the_limit_holds_across_two_processes_with_leases(settings, make_key, db, clock):
    """300 requests at once through two API servers (own engines, one database), limit 200:
    blocks of up to 4 hits, so the two may strand up to 3 each when the budget runs out."""
    key = make_key()
    limit = 200
    lease = limit // LEASE_DIVISOR
    assert lease == 4
    changed = settings.model_copy(update={"rate_limit_per_minute": limit})
    async with (
        LiveServer(changed) as one,
        LiveServer(changed) as two,
        httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=100)) as http,
    ):
        urls = [f"{(one, two)[i % 2].url}/api/v1/projects?limit=1" for i in range(300)]
        responses = await asyncio.gather(*(http.get(url, headers={"X-API-Key": key.key}) for url in urls))
    served = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert limit - 2 * (lease - 1) <= len(served) <= limit
    assert {r.status_code for r in refused} == {429}
    # Every hit handed out once, by one process or the other.
    remaining = [int(r.headers["x-ratelimit-remaining"]) for r in served]
    assert len(set(remaining)) == len(remaining) and min(remaining) >= 0
    assert error_body(refused[0])["error"]["code"] == "rate_limited"
    assert refused[0].headers["x-ratelimit-remaining"] == "0"
    assert window_hits(db, key.key_id) >= len(served)


async def test_a_cached_status_is_still_counted_and_refused(settings, make_key, clock):
    key = make_key()
    auth = {"X-API-Key": key.key}
    async with (
        LiveServer(settings.model_copy(update={"rate_limit_per_minute": 3})) as server,
        httpx.AsyncClient(base_url=f"{server.url}/api/v1", timeout=60) as http,
    ):
        created = await http.post("/projects", json={"project_name": "Polled"}, headers=auth)
        path = f"/projects/{created.json()['project']['id']}/status"
        answers = [await http.get(path, headers=auth) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 429]
    assert [r.headers["x-ratelimit-remaining"] for r in answers] == ["1", "0", "0"]
    assert error_body(answers[2]) == {
        "error": {
            "code": "rate_limited",
            "category": "quota",
            "message": "Rate limit of 3 requests per minute exceeded for this API key.",
            "retryable": True,
            "details": {"limit": 3, "retry_after": 40, "retry_guidance": "Retry after 40 s."},
        }
    }


async def test_a_used_up_lease_is_claimed_again_at_the_door(settings, make_key, db, clock, monkeypatch):
    """Plain pages of a known key are answered before routing even when its lease runs out:
    the door claims the next block as the route would (one trip), counted exactly; once the
    window's budget is spent the route answers 429 as always."""
    answered: list[bool] = []
    before_routing = StatusCacheMiddleware._answer_before_routing

    async def recorded(self: StatusCacheMiddleware, scope: Any, send: Any) -> bool:
        answered.append(await before_routing(self, scope, send))
        return answered[-1]

    monkeypatch.setattr(StatusCacheMiddleware, "_answer_before_routing", recorded)
    key = make_key()
    limit = 600  # blocks of 1, 2, 4, 8, then 12
    async with (
        LiveServer(settings.model_copy(update={"rate_limit_per_minute": limit})) as server,
        httpx.AsyncClient(base_url=f"{server.url}/api/v1", timeout=60) as http,
    ):
        pages = [await http.get("/projects?limit=1", headers={"X-API-Key": key.key}) for _ in range(30)]
    assert [r.headers["x-ratelimit-remaining"] for r in pages] == [str(n) for n in range(limit - 1, limit - 31, -1)]
    # The first request authenticates the key at the route; the 29 after it, six claims
    # among them, are answered at the door.
    assert answered == [False] + [True] * 29
    assert window_hits(db, key.key_id) == 39

    small = make_key()
    answered.clear()
    async with (
        LiveServer(settings.model_copy(update={"rate_limit_per_minute": 3})) as server,
        httpx.AsyncClient(base_url=f"{server.url}/api/v1", timeout=60) as http,
    ):
        pages = [await http.get("/projects", headers={"X-API-Key": small.key}) for _ in range(4)]
    assert [r.status_code for r in pages] == [200, 200, 200, 429]
    assert answered == [False, True, True, False]  # the refusal is the route's
    assert error_body(pages[3])["error"]["code"] == "rate_limited"
