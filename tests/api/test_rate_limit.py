"""Rate limits per API key: counted in the database, exact across API processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from sqlalchemy import select

from store.models import RateLimitWindow
from tests.api.conftest import T0
from tests.support import LiveServer, error_body


async def serve(settings, limit: int) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        LiveServer(settings.model_copy(update={"rate_limit_per_minute": limit})) as server,
        httpx.AsyncClient(base_url=f"{server.url}/api/v1", timeout=60) as http,
    ):
        yield http


@pytest_asyncio.fixture
async def limited(settings, clock) -> AsyncIterator[httpx.AsyncClient]:
    async for http in serve(settings, 3):
        yield http


def auth_of(key) -> dict[str, str]:
    return {"X-API-Key": key.key}


async def test_headers_on_every_authenticated_response(http, make_key, clock):
    auth = auth_of(make_key())
    first = await http.get("/projects", headers=auth)
    assert first.headers["x-ratelimit-limit"] == "600"
    assert first.headers["x-ratelimit-remaining"] == "599"
    assert first.headers["x-ratelimit-reset"] == "40"
    clock[0] = T0 + 10.5
    created = await http.post("/projects", json={"project_name": "Rl"}, headers=auth)
    assert created.status_code == 201
    assert created.headers["x-ratelimit-remaining"] == "598"
    assert created.headers["x-ratelimit-reset"] == "30"
    project_id = created.json()["project"]["id"]
    status = await http.get(f"/projects/{project_id}/status", headers=auth)
    assert status.headers["x-ratelimit-remaining"] == "597"
    # Errors raised after authentication carry them too.
    missing = await http.get("/projects/999999", headers=auth)
    assert missing.status_code == 404 and missing.headers["x-ratelimit-remaining"] == "596"


async def test_unauthenticated_requests_are_not_counted(http, clock):
    response = await http.get("/projects", headers={"X-API-Key": "ff_unknown"})
    assert response.status_code == 401
    assert "x-ratelimit-limit" not in response.headers


async def test_the_request_after_the_limit_is_429(limited, make_key, db, clock):
    key = make_key()
    remaining = [(await limited.get("/projects", headers=auth_of(key))).headers["x-ratelimit-remaining"] for _ in "abc"]
    assert remaining == ["2", "1", "0"]
    clock[0] = T0 + 15
    response = await limited.get("/projects", headers=auth_of(key))
    assert response.status_code == 429
    assert error_body(response) == {
        "error": {
            "code": "rate_limited",
            "category": "quota",
            "message": "Rate limit of 3 requests per minute exceeded for this API key.",
            "retryable": True,
            "details": {"limit": 3, "retry_after": 25, "retry_guidance": "Retry after 25 s."},
        }
    }
    assert response.headers["retry-after"] == "25"
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert response.headers["x-ratelimit-reset"] == "25"
    # An unknown key is still 401, not 429; the next window starts afresh.
    assert (await limited.get("/projects", headers={"X-API-Key": "ff_nope"})).status_code == 401
    clock[0] = T0 + 40
    again = await limited.get("/projects", headers=auth_of(key))
    assert again.status_code == 200 and again.headers["x-ratelimit-remaining"] == "2"
    # The first request of a window prunes the key's older windows.
    with db.session() as session:
        windows = session.scalars(select(RateLimitWindow.window_start).where(RateLimitWindow.key_id == key.key_id))
        assert list(windows) == [int(T0 + 40) // 60 * 60]


async def test_keys_are_counted_separately(limited, make_key, clock):
    first, second = make_key(), make_key()
    for _ in range(3):
        assert (await limited.get("/projects", headers=auth_of(first))).status_code == 200
    assert (await limited.get("/projects", headers=auth_of(first))).status_code == 429
    statuses = [(await limited.get("/projects", headers=auth_of(second))).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


async def test_a_second_key_of_the_same_owner_has_its_own_budget(limited, make_key, clock):
    owner = make_key()
    sibling = make_key(owner.owner)
    assert sibling.owner_id == owner.owner_id
    for key, expected in ((owner, 200), (owner, 200), (owner, 200), (owner, 429), (sibling, 200)):
        assert (await limited.get("/projects", headers=auth_of(key))).status_code == expected


async def test_exact_under_concurrency_across_processes(settings, make_key, clock):
    """50 requests at once through two API servers (own engines, one database), limit 20."""
    key = make_key()
    limit = settings.model_copy(update={"rate_limit_per_minute": 20})
    async with (
        LiveServer(limit) as one,
        LiveServer(limit) as two,
        httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=100)) as http,
    ):
        urls = [f"{(one, two)[i % 2].url}/api/v1/projects?limit=1" for i in range(50)]
        responses = await asyncio.gather(*(http.get(url, headers=auth_of(key)) for url in urls))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 20 + [429] * 30
    served = sorted(int(r.headers["x-ratelimit-remaining"]) for r in responses if r.status_code == 200)
    assert served == list(range(20))  # every count handed out exactly once


async def test_zero_disables_the_limit(settings, make_key, db, clock):
    key = make_key()
    async for http in serve(settings, 0):
        responses = [await http.get("/projects", headers=auth_of(key)) for _ in range(5)]
    assert all(r.status_code == 200 and "x-ratelimit-limit" not in r.headers for r in responses)
    with db.session() as session:
        assert session.scalars(select(RateLimitWindow).where(RateLimitWindow.key_id == key.key_id)).all() == []
