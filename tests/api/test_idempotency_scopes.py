"""Idempotent replays and scopes (issue 13, finding 7): a replay demands of the replaying key
the scopes the route demanded of the request that ran, and a 403 is never stored (nor a
401: a request without a valid key has no owner to store it under)."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from store.models import IdempotencyRecord, Project
from tests.support import error_body

BODY = {"project_name": "Replayed CRM"}


def headers(key, idem: str) -> dict[str, str]:
    return {"X-API-Key": key.key, "Idempotency-Key": idem}


def records(db, owner_id: int) -> list[tuple[str, int | None, list[str] | None]]:
    with db.session() as session:
        rows = session.execute(
            select(IdempotencyRecord.key, IdempotencyRecord.response_status, IdempotencyRecord.required_scopes).where(
                IdempotencyRecord.owner_id == owner_id
            )
        )
        return [tuple(row) for row in rows]


def projects_of(db, owner_id: int) -> list[int]:
    with db.session() as session:
        return list(session.scalars(select(Project.id).where(Project.owner_id == owner_id)))


async def test_a_read_only_key_does_not_get_a_create_replayed(http, make_key, db):
    creator = make_key()
    reader = make_key(creator.owner, scopes=["projects:read"])
    first = await http.post("/projects", json=BODY, headers=headers(creator, "create-1"))
    assert first.status_code == 201, first.text
    # Same owner, same Idempotency-Key, same body: before, the stored 201 was replayed.
    replay = await http.post("/projects", json=BODY, headers=headers(reader, "create-1"))
    assert replay.status_code == 403, replay.text
    assert "idempotent-replayed" not in replay.headers
    assert error_body(replay)["error"]["details"] == {"required_scope": "projects:create"}
    # Nor is it told that the key was used for another body (the creator is).
    other = {"project_name": "Other CRM"}
    probe = await http.post("/projects", json=other, headers=headers(reader, "create-1"))
    assert probe.status_code == 403 and probe.json()["error"]["code"] == "insufficient_scope"
    mismatch = await http.post("/projects", json=other, headers=headers(creator, "create-1"))
    assert mismatch.status_code == 422 and mismatch.json()["error"]["code"] == "idempotency_key_mismatch"
    # The key that may create still gets its replay, and nothing ran twice.
    again = await http.post("/projects", json=BODY, headers=headers(creator, "create-1"))
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert projects_of(db, creator.owner_id) == [first.json()["project"]["id"]]
    assert records(db, creator.owner_id) == [("create-1", 201, ["projects:create"])]


async def test_a_403_is_not_stored_for_the_key_that_has_the_scope(http, make_key, db):
    reader = make_key(scopes=["projects:read"])
    creator = make_key(reader.owner, scopes=["projects:create", "projects:read"])
    refused = await http.post("/projects", json=BODY, headers=headers(reader, "create-2"))
    assert refused.status_code == 403
    # Before, the 403 was replayed here for 24 h.
    created = await http.post("/projects", json=BODY, headers=headers(creator, "create-2"))
    assert created.status_code == 201, created.text
    assert "idempotent-replayed" not in created.headers
    assert len(projects_of(db, reader.owner_id)) == 1
    assert records(db, reader.owner_id) == [("create-2", 201, ["projects:create"])]


async def test_a_replayed_lifecycle_answer_demands_that_route_s_scope(http, worker, make_key, db):
    """Any POST route, however its scope is checked (here through the project it addresses):
    a stored 409 of /approve is not shown to a key without projects:approve."""
    owner = make_key()
    created = await http.post("/projects", json=BODY, headers={"X-API-Key": owner.key})
    project_id = created.json()["project"]["id"]
    approver = make_key(owner.owner, scopes=["projects:approve"])
    creator = make_key(owner.owner, scopes=["projects:create"])
    path = f"/projects/{project_id}/reject"
    # The run has no approval gate: 409 (the run is not awaiting approval, or is over). The
    # answer is stored, and is the approver's alone.
    first = await http.post(path, json={"notes": "no"}, headers=headers(approver, "reject-1"))
    assert first.status_code == 409, first.text
    stolen = await http.post(path, json={"notes": "no"}, headers=headers(creator, "reject-1"))
    assert stolen.status_code == 403 and "idempotent-replayed" not in stolen.headers
    assert stolen.json()["error"]["details"]["required_scope"] == "projects:approve"
    replay = await http.post(path, json={"notes": "no"}, headers=headers(approver, "reject-1"))
    assert replay.status_code == first.status_code and replay.headers["idempotent-replayed"] == "true"
    assert ("reject-1", first.status_code, ["projects:approve"]) in records(db, owner.owner_id)


async def test_concurrent_readers_and_a_creator_on_one_key(http, make_key, db):
    """Whichever claims the key first, the readers get 403 and the creator one project."""
    creator = make_key(scopes=["projects:create"])
    readers = [make_key(creator.owner, scopes=["projects:read"]) for _ in range(4)]
    for round_ in range(3):
        idem = f"race-{round_}"
        calls = [http.post("/projects", json=BODY, headers=headers(reader, idem)) for reader in readers]
        calls.insert(round_, http.post("/projects", json=BODY, headers=headers(creator, idem)))
        responses = await asyncio.gather(*calls)
        statuses = [r.status_code for r in responses]
        assert statuses.pop(round_) == 201
        assert statuses == [403] * 4, [r.text for r in responses]
    assert len(projects_of(db, creator.owner_id)) == 3
    assert sorted(status for _, status, _ in records(db, creator.owner_id)) == [201] * 3
