"""Status polls of a turn of the loop read their projects with one statement on PostgreSQL
(api.status_batches): each poll gets the row the statement of its own would give (its
owner's project, not another owner's, not an archived one, not a missing one), a batch under
way takes no newcomer (so a poll sees every write committed before it), errors reach every
poll of the batch, and a poll that went away leaves the others their answers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from api.direct_reads import PostgresAsync
from api.reads import ProjectReads
from api.status_batches import StatusBatches
from api.status_cache import StatusCache
from store.db import Database
from store.models import Project, utcnow
from store.projects import archive_project, create_project
from store.reads import status_query


@pytest.fixture
def reads(db: Database) -> Iterator[ProjectReads]:
    if db.is_sqlite:
        pytest.skip("PostgreSQL's polls share statements; SQLite reads each on the loop")
    reads = ProjectReads(db, 1)
    yield reads
    reads.close()


@pytest.fixture
def direct(reads: ProjectReads) -> PostgresAsync:
    assert isinstance(reads.threads.direct, PostgresAsync)
    return reads.threads.direct


def new_projects(db: Database, owner_id: int, count: int) -> list[int]:
    with db.session() as session:
        return [
            create_project(
                session,
                owner_id=owner_id,
                quota=1000,
                name=f"P{n}",
                slug=f"p{n}",
                description="",
                template="widget-lib",
                input_payload={"project_name": f"P{n}"},
            ).id
            for n in range(count)
        ]


class Counted:
    """The batches' reads, counted (and held back when asked)."""

    def __init__(self, direct: PostgresAsync) -> None:
        self.direct = direct
        self.statements: list[list[int]] = []
        self.fetched = asyncio.Event()
        self.release: asyncio.Event | None = None

    async def all(self, statement: Any, params: dict[str, Any]) -> Any:
        self.statements.append(params["ids"])
        rows = await self.direct.all(statement, params)
        self.fetched.set()
        if self.release is not None:
            await self.release.wait()
        return rows


async def test_each_poll_of_a_turn_gets_its_own_row_from_one_statement(db, make_key, direct):
    mine, theirs = make_key().owner_id, make_key().owner_id
    own, other = new_projects(db, mine, 6), new_projects(db, theirs, 2)
    with db.session() as session:
        assert archive_project(session, owner_id=mine, project_id=own[5], now=utcnow())
    counted = Counted(direct)
    batches = StatusBatches(counted)  # type: ignore[arg-type]
    polls = [(mine, p) for p in own] + [(mine, other[0]), (theirs, other[0]), (theirs, own[0]), (mine, 10**9)]
    polls += [(mine, own[0])] * 3  # the same project polled at once
    rows = await asyncio.gather(*(batches.row(owner_id=o, project_id=p) for o, p in polls))
    assert len(counted.statements) == 1
    assert sorted(counted.statements[0]) == sorted({p for _, p in polls})
    for (owner_id, project_id), row in zip(polls, rows, strict=True):
        alone = await direct.one(*status_query(owner_id=owner_id, project_id=project_id))
        assert row == (tuple(alone) if alone is not None else None), (owner_id, project_id)
    assert [row is not None for row in rows[:6]] == [True] * 5 + [False]  # the archived one: none
    assert rows[6] is None and rows[7] is not None and rows[8] is None and rows[9] is None


async def test_a_turn_beyond_the_batch_size_makes_several_statements(db, make_key, direct, monkeypatch):
    owner_id = make_key().owner_id
    ids = new_projects(db, owner_id, 7)
    monkeypatch.setattr("api.status_batches.MAX_BATCH", 3)
    counted = Counted(direct)
    batches = StatusBatches(counted)  # type: ignore[arg-type]
    rows = await asyncio.gather(*(batches.row(owner_id=owner_id, project_id=p) for p in ids))
    assert [len(ids) for ids in counted.statements] == [3, 3, 1]
    assert [row[0] for row in rows if row is not None] == ids


async def test_a_batch_under_way_takes_no_newcomer(db, make_key, direct):
    owner_id = make_key().owner_id
    (project_id,) = new_projects(db, owner_id, 1)
    counted = Counted(direct)
    counted.release = asyncio.Event()
    batches = StatusBatches(counted)  # type: ignore[arg-type]
    first = asyncio.create_task(batches.row(owner_id=owner_id, project_id=project_id))
    await counted.fetched.wait()  # its statement has read the row, and is held back
    with db.session() as session:
        session.execute(update(Project).where(Project.id == project_id).values(status="failed"))
    second = asyncio.create_task(batches.row(owner_id=owner_id, project_id=project_id))
    await asyncio.sleep(0.05)
    assert len(counted.statements) == 2  # the second poll read afresh, after the write
    counted.release.set()
    before, after = await first, await second
    assert before is not None and before[1] == "queued"
    assert after is not None and after[1] == "failed"


async def test_an_error_reaches_every_poll_and_a_poll_gone_leaves_the_others(db, make_key, direct, monkeypatch):
    owner_id = make_key().owner_id
    ids = new_projects(db, owner_id, 3)
    batches = StatusBatches(direct)

    async def failing(statement: Any, params: dict[str, Any]) -> Any:
        raise OperationalError("SELECT", params, Exception("server closed the connection"))

    monkeypatch.setattr(direct, "all", failing)
    results = await asyncio.gather(*(batches.row(owner_id=owner_id, project_id=p) for p in ids), return_exceptions=True)
    assert all(isinstance(result, OperationalError) for result in results)
    monkeypatch.undo()
    gone = asyncio.create_task(batches.row(owner_id=owner_id, project_id=ids[0]))
    kept = asyncio.create_task(batches.row(owner_id=owner_id, project_id=ids[0]))
    await asyncio.sleep(0)
    gone.cancel()
    row = await kept
    assert row is not None and row[0] == ids[0]
    assert gone.cancelled()


async def test_the_status_cache_reads_postgresql_in_batches(db, make_key, reads):
    owner_id = make_key().owner_id
    ids = new_projects(db, owner_id, 4)
    cache = StatusCache(reads, 0)
    assert cache._batches is not None
    bodies = await asyncio.gather(*(cache.body(owner_id=owner_id, project_id=p) for p in ids))
    assert [b'"id":%d' % p in body for p, body in zip(ids, bodies, strict=True)] == [True] * 4


async def test_a_batch_cancelled_cancels_its_polls(db, make_key, direct):
    owner_id = make_key().owner_id
    (project_id,) = new_projects(db, owner_id, 1)
    counted = Counted(direct)
    counted.release = asyncio.Event()  # never set: the statement is held until cancelled
    batches = StatusBatches(counted)  # type: ignore[arg-type]
    poll = asyncio.create_task(batches.row(owner_id=owner_id, project_id=project_id))
    await counted.fetched.wait()
    (read,) = batches._reads
    read.cancel()
    with pytest.raises(asyncio.CancelledError):
        await poll
    assert poll.cancelled() and batches._reads == set()
