"""DELETE right after create (issue 13, finding 10): the archive is a write like any other,
so it never fails on SQLite while the worker writes the new project; and a DELETE is done,
or refused as retryable with nothing changed."""

from __future__ import annotations

import asyncio
import socket

import httpx
from sqlalchemy import select

from store.models import Project
from tests.support import LiveServer, error_body
from workflows import workflow_id_for

ROUNDS = 16


async def create_then_delete(http, auth: dict, name: str) -> tuple[int, httpx.Response]:
    created = await http.post("/projects", json={"project_name": name, "template": "widget-lib"}, headers=auth)
    assert created.status_code == 201, created.text
    project_id = created.json()["project"]["id"]
    return project_id, await http.delete(f"/projects/{project_id}", headers=auth)


def archived(db, project_ids: list[int]) -> dict[int, bool]:
    with db.session() as session:
        rows = session.execute(select(Project.id, Project.archived_at).where(Project.id.in_(project_ids)))
        return {project_id: at is not None for project_id, at in rows}


async def test_delete_right_after_create_is_done_every_time(http, worker, make_key, db, client):
    """Before, on SQLite: 503 "database temporarily unavailable" for about half of these,
    each leaving a cancelled project that still counted against the quota."""
    key = make_key(quota=ROUNDS)
    auth = {"X-API-Key": key.key}
    one_by_one = [await create_then_delete(http, auth, f"Seq {n}") for n in range(ROUNDS)]
    # All at once: creates, deletes and the worker's writes of each new project interleave.
    at_once = await asyncio.gather(*(create_then_delete(http, auth, f"Par {n}") for n in range(ROUNDS)))
    for project_id, deleted in one_by_one + at_once:
        assert deleted.status_code == 200, (project_id, deleted.text)
        assert deleted.json() == {"id": project_id, "status": "archived"}
    ids = [project_id for project_id, _ in one_by_one + at_once]
    assert archived(db, ids) == dict.fromkeys(ids, True)
    # Nothing counts: the whole quota is free again, and the list is empty.
    assert (await http.get("/projects", headers=auth)).json()["total"] == 0
    refill = await asyncio.gather(
        *(http.post("/projects", json={"project_name": f"Again {n}"}, headers=auth) for n in range(ROUNDS))
    )
    assert [r.status_code for r in refill] == [201] * ROUNDS
    # And no run goes on for a deleted project: each one's workflow ends (cancelled, or done
    # if it finished first).
    for project_id in ids:
        handle = client.get_workflow_handle(workflow_id_for(project_id))
        for _ in range(200):
            if (await handle.describe()).status.name != "RUNNING":
                break
            await asyncio.sleep(0.05)
        assert (await handle.describe()).status.name in ("CANCELED", "COMPLETED"), project_id


async def test_a_second_delete_is_404(http, worker, make_key):
    auth = {"X-API-Key": make_key().key}
    project_id, first = await create_then_delete(http, auth, "Twice")
    assert first.status_code == 200
    again = await asyncio.gather(*(http.delete(f"/projects/{project_id}", headers=auth) for _ in range(4)))
    assert [r.status_code for r in again] == [404] * 4


async def test_a_delete_temporal_cannot_take_changes_nothing(settings, http, make_key, db):
    """Temporal unreachable: 503 retryable, and the project neither archived nor cancelled.
    (Before: 500, or, with Temporal answering but the archive failing, cancelled but kept.)"""
    auth = {"X-API-Key": make_key().key}
    created = await http.post("/projects", json={"project_name": "Kept"}, headers=auth)
    project_id = created.json()["project"]["id"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    down = settings.model_copy(update={"temporal_address": f"127.0.0.1:{closed}"})
    async with LiveServer(down) as server, httpx.AsyncClient(base_url=f"{server.url}/api/v1", timeout=60) as broken:
        refused = await broken.delete(f"/projects/{project_id}", headers=auth)
        # Every other action that needs Temporal is retryable too (before: 500).
        for action in ("cancel", "approve", "pause"):
            answer = await broken.post(f"/projects/{project_id}/{action}", headers=auth)
            assert answer.status_code == 503, (action, answer.text)
    assert refused.status_code == 503, refused.text
    error = error_body(refused)["error"]
    assert (error["code"], error["retryable"]) == ("retryable_error", True)
    assert archived(db, [project_id]) == {project_id: False}
    listed = (await http.get("/projects", headers=auth)).json()
    assert [p["id"] for p in listed["projects"]] == [project_id] and listed["projects"][0]["status"] == "queued"
    # Retried where Temporal answers: done.
    assert (await http.delete(f"/projects/{project_id}", headers=auth)).status_code == 200
    assert (await http.get("/projects", headers=auth)).json()["total"] == 0
