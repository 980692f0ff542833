"""Reads made from the event loop without a thread hop (api.direct_reads): the status poll
and the plain page on both databases. They answer the bytes the thread's reads answer, and
they fail, recover and close as those do; on SQLite a statement beyond its budget of steps
is made in a thread instead, with the same answer."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import bindparam, select
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from api.direct_reads import PostgresAsync, SQLiteOnTheLoop
from api.read_json import status_json
from api.read_threads import ReadThreads
from api.reads import ProjectReads
from api.status_middleware import direct_page
from store.db import Database
from store.keys import create_key
from store.models import Base
from store.projects import Projection, apply_projection, create_project
from store.reads import project_status, projects, read_engine, status_query
from tests.support import POSTGRES_URL

COUNT = 7


@pytest.fixture
def owned(db, make_key) -> tuple[int, list[int]]:
    """An owner with COUNT projects, one of them ready; their ids, oldest first."""
    key = make_key()
    ids = []
    with db.session(write_lock=True) as session:
        for n in range(COUNT):
            project = create_project(
                session,
                owner_id=key.owner_id,
                quota=100,
                name=f"P{n} ü",
                slug=f"p{n}",
                description="",
                template="widget-lib",
                input_payload={"project_name": f"P{n}", "n": n},
            )
            ids.append(project.id)
        at = project.created_at
        apply_projection(
            session,
            projection=Projection(
                project_id=ids[0], seq=1, status="ready", phase="ready", at=at, started_at=at, finished_at=at
            ),
        )
    return key.owner_id, ids


@pytest.fixture
def reads(db: Database) -> Iterator[ProjectReads]:
    reads = ProjectReads(db, 1)
    yield reads
    reads.close()


async def thread_status(reads: ProjectReads, owner_id: int, project_id: int) -> bytes | None:
    row = await reads.run(project_status, owner_id=owner_id, project_id=project_id)
    return None if row is None else status_json(row)


async def direct_status(reads: ProjectReads, owner_id: int, project_id: int) -> bytes | None:
    assert reads.threads.direct is not None
    row = await reads.threads.direct.one(*status_query(owner_id=owner_id, project_id=project_id))
    return None if row is None else status_json(row)


async def test_the_status_read_from_the_loop_is_the_threads(db, owned, reads):
    owner_id, ids = owned
    direct = reads.threads.direct
    assert isinstance(direct, SQLiteOnTheLoop if db.is_sqlite else PostgresAsync)
    for project_id in ids:
        body = await direct_status(reads, owner_id, project_id)
        assert body is not None
        assert body == await thread_status(reads, owner_id, project_id)
    # Another owner's project, and one that does not exist: no row.
    assert await direct_status(reads, owner_id + 1000, ids[0]) is None
    assert await direct_status(reads, owner_id, ids[-1] + 1000) is None


async def test_pages_read_from_the_loop_are_the_threads(db, owned, reads):
    owner_id, _ = owned
    direct = reads.threads.direct
    assert direct is not None
    # The first page, a full page inside, the last (short) page, past the end, far past it.
    for limit, offset in ((20, 0), (2, 1), (3, COUNT - 2), (2, COUNT), (5, 10**6)):
        expected = await reads.page(owner_id=owner_id, status=None, limit=limit, offset=offset)
        assert await direct_page(direct, owner_id=owner_id, limit=limit, offset=offset) == expected
    assert b'"total":0' in await direct_page(direct, owner_id=owner_id + 1000, limit=20, offset=0)


async def test_sqlite_makes_a_statement_beyond_its_budget_in_a_thread(db, owned, reads, monkeypatch):
    if not db.is_sqlite:
        pytest.skip("SQLite's connection held by the loop")
    owner_id, ids = owned
    direct = reads.threads.direct
    assert isinstance(direct, SQLiteOnTheLoop)
    made_in_a_thread: list[object] = []
    run = reads.threads.run

    async def counted(read: Any) -> Any:
        made_in_a_thread.append(read)
        return await run(read)

    monkeypatch.setattr(reads.threads, "run", counted)
    expected = await reads.page(owner_id=owner_id, status=None, limit=20, offset=0)
    made_in_a_thread.clear()
    assert await direct_page(direct, owner_id=owner_id, limit=20, offset=0) == expected
    assert made_in_a_thread == []  # within the budget: on the loop
    # A budget above a poll's steps (~270), below a page's of seven projects (~350).
    monkeypatch.setattr(SQLiteOnTheLoop, "MAX_STEPS", 300)
    monkeypatch.setattr(SQLiteOnTheLoop, "STEP_GRAIN", 10)
    direct._drop()
    held = direct._connection()  # the handler's grain is set when the connection is taken
    assert await direct_page(direct, owner_id=owner_id, limit=20, offset=0) == expected
    assert len(made_in_a_thread) == 1
    # The connection is kept (running out of steps is no error of it), and a poll still fits.
    assert direct._held is held
    assert await direct_status(reads, owner_id, ids[0]) == await thread_status(reads, owner_id, ids[0])
    assert len(made_in_a_thread) == 2  # the thread's read just above, not the poll


async def test_sqlite_reads_in_a_thread_when_the_loops_connection_fails(db, owned, reads):
    if not db.is_sqlite:
        pytest.skip("SQLite's connection held by the loop")
    owner_id, ids = owned
    direct = reads.threads.direct
    assert isinstance(direct, SQLiteOnTheLoop)
    expected = await thread_status(reads, owner_id, ids[0])
    assert await direct_status(reads, owner_id, ids[0]) == expected
    held = direct._held
    assert held is not None
    # Never waits on the loop: a lock met fails the read at once (and it goes to a thread).
    assert held.exec_driver_sql("PRAGMA busy_timeout").scalar() == 0
    held.connection.dbapi_connection.close()  # type: ignore[union-attr]  # the next statement fails
    assert await direct_status(reads, owner_id, ids[0]) == expected  # read again in a thread
    assert direct._held is None
    assert await direct_status(reads, owner_id, ids[0]) == expected  # and on a new connection
    assert direct._held is not None and direct._held is not held


async def test_sqlite_waits_for_a_lock_in_a_thread_not_on_the_loop(db, tmp_path):
    if not db.is_sqlite:
        pytest.skip("SQLite's locks")
    # A database in rollback-journal mode, where a writer's exclusive lock stops readers (in
    # WAL mode readers meet one only when a connection recovers the WAL after a crash).
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    plain = sa.create_engine(url)
    Base.metadata.create_all(plain)
    with Session(plain, expire_on_commit=False) as session:
        key = create_key(session, owner_name="o", email="o@example.test", project_quota=5)
        project = create_project(
            session,
            owner_id=key.owner_id,
            quota=5,
            name="P",
            slug="p",
            description="",
            template="widget-lib",
            input_payload={},
        )
        session.commit()
    reads = ProjectReads(Database(url), 1)
    try:
        expected = await direct_status(reads, key.owner_id, project.id)
        assert expected is not None
        with plain.connect() as conn:
            conn.exec_driver_sql("BEGIN EXCLUSIVE")
            started = time.monotonic()
            poll = asyncio.ensure_future(direct_status(reads, key.owner_id, project.id))
            for _ in range(20):  # the loop runs meanwhile: the read waits in a thread
                await asyncio.sleep(0.01)
            assert not poll.done()
            assert time.monotonic() - started < 1.0  # never blocked by the lock
            conn.exec_driver_sql("COMMIT")
        assert await asyncio.wait_for(poll, 30) == expected
    finally:
        reads.close()
        reads.db.dispose()
        plain.dispose()


def postgres_only(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("psycopg's asynchronous connections")


async def test_postgresql_reads_again_when_the_server_dropped_the_connection(db, owned, reads):
    postgres_only(db)
    owner_id, ids = owned
    direct = reads.threads.direct
    assert isinstance(direct, PostgresAsync)
    expected = await thread_status(reads, owner_id, ids[0])
    assert await direct_status(reads, owner_id, ids[0]) == expected
    (idle,) = direct._idle
    admin = sa.create_engine(POSTGRES_URL)
    with admin.connect() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": idle.info.backend_pid})
    admin.dispose()
    assert await direct_status(reads, owner_id, ids[0]) == expected
    assert idle.closed
    (fresh,) = direct._idle
    assert fresh is not idle and not fresh.closed


async def test_postgresql_errors_are_sqlalchemys_and_drop_the_connection(db, owned, reads):
    postgres_only(db)
    direct = reads.threads.direct
    assert isinstance(direct, PostgresAsync)
    missing = sa.table("no_such_table", sa.column("id", sa.Integer))
    with pytest.raises(ProgrammingError):
        await direct.one(select(missing.c.id).where(missing.c.id == bindparam("id", type_=sa.Integer)), {"id": 1})
    assert direct._idle == []
    owner_id, ids = owned
    assert await direct_status(reads, owner_id, ids[0]) == await thread_status(reads, owner_id, ids[0])
    # A server that cannot be reached: the error the engine raises (answered 503).
    unreachable = PostgresAsync(sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:1/test"), 1)
    with pytest.raises(OperationalError):
        await unreachable.one(*status_query(owner_id=owner_id, project_id=ids[0]))
    unreachable.close()


def test_postgresql_takes_only_statements_whose_values_pass_through(db):
    postgres_only(db)
    direct = PostgresAsync(read_engine(db, 1), 1)
    # A stored timestamp is parsed by SQLAlchemy's type (the status reads it as text).
    with pytest.raises(ValueError, match="created_at"):
        direct.compiled(select(projects.created_at))
    with pytest.raises(ValueError, match="ids"):
        direct.compiled(select(projects.id).where(projects.id.in_(bindparam("ids", expanding=True))))
    statement, _ = status_query(owner_id=1, project_id=1)
    assert direct.compiled(statement) is direct.compiled(statement)
    direct.close()


async def test_closing_the_reads_closes_the_loops_connections(db, owned):
    owner_id, ids = owned
    reads = ProjectReads(db, 1)
    await direct_status(reads, owner_id, ids[0])
    direct = reads.threads.direct
    held: list[Any] = [direct._held] if isinstance(direct, SQLiteOnTheLoop) else list(direct._idle)  # type: ignore[union-attr]
    assert held and all(conn is not None for conn in held)
    reads.close()
    if db.is_sqlite:
        assert held[0].closed and direct._held is None  # type: ignore[union-attr]
    else:
        assert all(conn.closed for conn in held)


async def test_the_loops_connection_is_one_more_than_the_threads(db, owned):
    """The threads hold theirs for life: the loop's must not wait for one of them (SQLite)."""
    if not db.is_sqlite:
        pytest.skip("SQLite's pool of the reads' engine")
    owner_id, ids = owned
    reads = ProjectReads(db, 2)
    together = threading.Barrier(2, timeout=10)

    def read_together(conn: Any) -> int:
        together.wait()  # both threads at once: each has taken its connection
        return int(conn.exec_driver_sql("SELECT 1").scalar())

    try:
        assert await asyncio.gather(reads.threads.run(read_together), reads.threads.run(read_together)) == [1, 1]
        expected = await thread_status(reads, owner_id, ids[0])
        assert await asyncio.wait_for(direct_status(reads, owner_id, ids[0]), 5) == expected
    finally:
        reads.close()


def test_no_direct_reads_for_an_in_memory_database():
    db = Database("sqlite://")
    threads = ReadThreads(read_engine(db, 1), 1)
    try:
        assert threads.direct is None
    finally:
        threads.close()
        db.dispose()


def test_a_status_row_names_its_status_where_the_cache_reads_it():
    from api.status_cache import _STATUS_AT

    statement, _ = status_query(owner_id=1, project_id=1)
    assert list(statement.selected_columns)[_STATUS_AT].name == "status"
