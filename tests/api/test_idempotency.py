"""Idempotency-Key on POST: replayed, refused on another body, one winner under concurrency."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import timedelta

import httpx
import pytest
from fastapi import Response
from sqlalchemy import func, select, update

import api.idempotency
from store.idempotency import claim_key, complete_key
from store.models import IdempotencyRecord, Project, utcnow
from tests.support import LiveServer, error_body
from workflows import workflow_id_for

BODY = {"project_name": "Idem CRM", "use_stripe": "y"}


@pytest.fixture
def key(make_key):
    return make_key()


def headers(key, idem: str | None = None) -> dict[str, str]:
    return {"X-API-Key": key.key} | ({"Idempotency-Key": idem} if idem is not None else {})


def projects_of(db, owner_id: int) -> list[int]:
    with db.session() as session:
        return list(session.scalars(select(Project.id).where(Project.owner_id == owner_id)))


async def test_a_retried_create_is_replayed(http, key, db, client):
    first = await http.post("/projects", json=BODY, headers=headers(key, "create-1"))
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    # The same JSON, keys reordered and spaced differently, is the same request.
    again = await http.post(
        "/projects",
        content=json.dumps(dict(reversed(BODY.items())), indent=2),
        headers=headers(key, "create-1") | {"Content-Type": "application/json", "X-Request-ID": "retry-1"},
    )
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["x-request-id"] == "retry-1"
    assert again.headers["x-ratelimit-remaining"] == "598"  # a replay is a request too
    project_id = first.json()["project"]["id"]
    assert projects_of(db, key.owner_id) == [project_id]
    description = await client.get_workflow_handle(workflow_id_for(project_id)).describe()
    assert description.id == workflow_id_for(project_id)


async def test_another_body_with_the_same_key_is_422(http, key, db):
    assert (await http.post("/projects", json=BODY, headers=headers(key, "k"))).status_code == 201
    response = await http.post("/projects", json=BODY | {"use_stripe": "n"}, headers=headers(key, "k"))
    assert response.status_code == 422
    assert error_body(response) == {
        "error": {
            "code": "idempotency_key_mismatch",
            "category": "validation",
            "message": "This Idempotency-Key was already used with a different request.",
            "retryable": False,
            "details": {"field": "Idempotency-Key"},
        }
    }
    assert len(projects_of(db, key.owner_id)) == 1


async def test_concurrent_duplicates_start_one_project(http, key, db):
    responses = await asyncio.gather(
        *(http.post("/projects", json=BODY, headers=headers(key, "burst")) for _ in range(10))
    )
    assert [r.status_code for r in responses] == [201] * 10
    assert len({r.json()["project"]["id"] for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 9
    assert len(projects_of(db, key.owner_id)) == 1


async def test_keys_are_per_owner(http, key, make_key, db):
    other = make_key()
    mine = await http.post("/projects", json=BODY, headers=headers(key, "shared"))
    theirs = await http.post("/projects", json=BODY, headers=headers(other, "shared"))
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["project"]["id"] != theirs.json()["project"]["id"]
    assert "idempotent-replayed" not in theirs.headers
    assert len(projects_of(db, other.owner_id)) == 1


async def test_without_the_header_nothing_changes(http, key, db):
    for _ in range(2):
        response = await http.post("/projects", json=BODY, headers=headers(key))
        assert response.status_code == 201 and "idempotent-replayed" not in response.headers
    assert len(projects_of(db, key.owner_id)) == 2
    with db.session() as session:
        count = session.scalar(select(func.count()).where(IdempotencyRecord.owner_id == key.owner_id))
        assert count == 0


async def test_key_length(http, key, db):
    too_long = await http.post("/projects", json=BODY, headers=headers(key, "x" * 256))
    assert too_long.status_code == 400
    assert too_long.json()["error"]["code"] == "invalid_idempotency_key"
    assert (await http.post("/projects", json=BODY, headers=headers(key, "x" * 255))).status_code == 201
    assert len(projects_of(db, key.owner_id)) == 1


async def test_4xx_are_stored_and_401_is_untouched(http, key):
    bad = await http.post("/projects", json={"project_name": ""}, headers=headers(key, "bad"))
    replay = await http.post("/projects", json={"project_name": ""}, headers=headers(key, "bad"))
    assert bad.status_code == replay.status_code == 400
    assert replay.headers["idempotent-replayed"] == "true"
    # The body is replayed byte for byte: its request_id names the request that ran.
    assert replay.content == bad.content
    assert replay.json()["error"]["details"]["request_id"] == bad.headers["x-request-id"]
    assert replay.headers["x-request-id"] != bad.headers["x-request-id"]
    anonymous = await http.post("/projects", json=BODY, headers={"Idempotency-Key": "bad"})
    assert anonymous.status_code == 401 and "idempotent-replayed" not in anonymous.headers


async def test_a_5xx_frees_the_key(settings, http, key, db):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    down = settings.model_copy(update={"temporal_address": f"127.0.0.1:{closed}"})
    async with LiveServer(down) as server, httpx.AsyncClient(base_url=f"{server.url}/api/v1", timeout=60) as broken:
        failed = await broken.post("/projects", json=BODY, headers=headers(key, "retry-me"))
    assert failed.status_code == 503
    retried = await http.post("/projects", json=BODY, headers=headers(key, "retry-me"))
    assert retried.status_code == 201 and "idempotent-replayed" not in retried.headers
    assert len(projects_of(db, key.owner_id)) == 1


def claim(db, key, body: dict, **values) -> int:
    print_ = api.idempotency.fingerprint("POST", "/api/v1/projects", json.dumps(body).encode())
    with db.session(write_lock=True) as session:
        record_id = claim_key(
            session, owner_id=key.owner_id, key="held", fingerprint=print_, now=utcnow(), ttl=timedelta(hours=24)
        )
        assert record_id is not None
        if values:
            session.execute(update(IdempotencyRecord).where(IdempotencyRecord.id == record_id).values(**values))
    return record_id


async def test_a_running_claim_is_409_then_replayed(http, key, db, monkeypatch):
    monkeypatch.setattr(api.idempotency, "WAIT_SECONDS", 0.3)
    record_id = claim(db, key, BODY)
    busy = await http.post("/projects", json=BODY, headers=headers(key, "held"))
    assert busy.status_code == 409
    assert busy.headers["retry-after"] == "1"
    error = error_body(busy)["error"]
    assert (error["code"], error["retryable"]) == ("idempotency_key_in_use", True)
    # A duplicate waiting while the first one finishes gets its response.
    waiting = asyncio.create_task(http.post("/projects", json=BODY, headers=headers(key, "held")))
    await asyncio.sleep(0.1)
    with db.session() as session:
        complete_key(
            session,
            record_id=record_id,
            status=201,
            headers=[["content-type", "application/json"]],
            body=b'{"project": "stored"}',
            now=utcnow(),
            ttl=timedelta(hours=24),
        )
    replay = await waiting
    assert replay.status_code == 201 and replay.json() == {"project": "stored"}
    assert replay.headers["idempotent-replayed"] == "true"
    assert projects_of(db, key.owner_id) == []


async def test_stale_and_expired_claims_are_taken_over(http, key, db):
    long_ago = utcnow() - timedelta(hours=1)
    claim(db, key, BODY, locked_at=long_ago)
    taken = await http.post("/projects", json=BODY, headers=headers(key, "held"))
    assert taken.status_code == 201 and "idempotent-replayed" not in taken.headers
    with db.session() as session:
        session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.owner_id == key.owner_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    # Expired: pruned, and the same key runs afresh (even with another body).
    fresh = await http.post("/projects", json=BODY | {"use_stripe": "n"}, headers=headers(key, "held"))
    assert fresh.status_code == 201 and "idempotent-replayed" not in fresh.headers
    assert len(projects_of(db, key.owner_id)) == 2


async def test_any_post_route_is_covered_and_no_store_is_never_kept(settings, key, db):
    """Routes do nothing themselves (as the lifecycle ones); a no-store response frees the key."""
    calls: list[str] = []
    server = LiveServer(settings)
    app = server.server.config.app

    async def counted() -> dict[str, int]:
        calls.append("counted")
        return {"calls": len(calls)}

    async def secret() -> Response:
        calls.append("secret")
        return Response(b'{"secret": "s"}', media_type="application/json", headers={"Cache-Control": "no-store"})

    app.add_api_route("/api/v1/counted", counted, methods=["POST"])
    app.add_api_route("/api/v1/secret", secret, methods=["POST"])
    async with server, httpx.AsyncClient(base_url=f"{server.url}/api/v1") as http:
        first, again = [await http.post("/counted", headers=headers(key, "c")) for _ in range(2)]
        assert first.json() == again.json() == {"calls": 1}
        assert again.headers["idempotent-replayed"] == "true"
        for _ in range(2):
            shown = await http.post("/secret", headers=headers(key, "s"))
            assert shown.json() == {"secret": "s"} and "idempotent-replayed" not in shown.headers
    assert calls == ["counted", "secret", "secret"]
    with db.session() as session:
        assert session.scalars(
            select(IdempotencyRecord.key).where(IdempotencyRecord.owner_id == key.owner_id)
        ).all() == ["c"]


async def test_database_down_is_503(settings, key):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    down_url = f"postgresql+psycopg://postgres@127.0.0.1:{closed}/test?connect_timeout=2"
    broken = settings.model_copy(update={"database_url": down_url})
    async with LiveServer(broken) as server, httpx.AsyncClient(base_url=f"{server.url}/api/v1", timeout=60) as http:
        response = await http.post("/projects", json=BODY, headers=headers(key, "db-down"))
    assert response.status_code == 503
    assert error_body(response)["error"]["code"] == "retryable_error"
