"""Reads made from the event loop itself, without the hop to a read thread (api.read_threads
says what the hop costs): SQLite in the loop's thread within a budget of SQLite's steps,
PostgreSQL on psycopg's asynchronous connections."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from sqlalchemy import Connection, Engine, Select
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from api.read_threads import ReadThreads

Row = Sequence[Any]


class DirectReads:
    """A statement read from the event loop itself, without the hop to a read thread:
    ``all``, its rows; ``one``, its row or none (a status poll's)."""

    async def one(self, statement: Select[Any], params: dict[str, Any]) -> Row | None:
        rows = await self.all(statement, params)
        if len(rows) > 1:
            raise ValueError("the statement returned more than one row")
        return rows[0] if rows else None

    async def all(self, statement: Select[Any], params: dict[str, Any]) -> Sequence[Row]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def direct_reads(engine: Engine, size: int, threads: ReadThreads) -> DirectReads | None:
    """The engine's way of reading from the loop: SQLite's file or PostgreSQL (psycopg);
    None for anything else (an in-memory database, whose one connection is the writers')."""
    if engine.dialect.name == "sqlite":
        return SQLiteOnTheLoop(engine, threads) if engine.url.database not in (None, "", ":memory:") else None
    if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
        # Twice the threads: a connection stays taken from its statement until the loop next
        # gets to its answer, which under load is the loop's round of every ready request.
        # Measured, 50 polls at once, 2 threads: 2 connections 1,370-1,760 polls/s, 4: 3,030,
        # 8: 2,420-2,790, 16: 2,090-2,460 (more server processes for the same two cores).
        return PostgresAsync(engine, 2 * size)
    return None


class SQLiteOnTheLoop(DirectReads):
    """SQLite in the loop's thread, on a connection of the reads' engine that the loop holds
    (store.reads.read_engine keeps one for it): the loop waits for SQLite's work, which is
    bounded by a budget of SQLite's steps (``MAX_STEPS``). A statement that runs out of it is
    interrupted and made again in a read thread, off the loop: a page of an owner with many
    thousands of projects, a page far along, a count of them all.

    Measured under the uncached reads benchmark (bench/reads.py, 1,000 projects): a page of 20
    costs 8,000-11,000 steps (a status poll ~270), ~150 us of SQLite; read from the loop it
    took 580-620 us of the API's CPU against 745-1,100 us with the hop (one or two read
    threads), 1,660-1,780 pages/s against 1,130-1,520 (BENCHMARKS.md, session 9). The budget keeps the loop's wait under
    about half a millisecond (pages of owners up to ~2,500 projects, any offset).

    A WAL database's readers do not wait for its writers; if a lock is ever met (another
    connection recovering the WAL after a crash), the connection does not wait for it (a busy
    timeout of 0, where the threads' connections wait up to 30 s): the read fails at once, the
    connection is dropped and the read is made again in a read thread, which waits off the
    loop and retries as any read does. So does any other database error.
    """

    # SQLite calls the progress handler every STEP_GRAIN virtual machine steps.
    STEP_GRAIN = 1_000
    MAX_STEPS = 25_000

    def __init__(self, engine: Engine, threads: ReadThreads) -> None:
        self.engine = engine
        self.threads = threads
        self._held: Connection | None = None
        self._grains_left = 0

    async def all(self, statement: Select[Any], params: dict[str, Any]) -> Sequence[Row]:
        self._grains_left = self.MAX_STEPS // self.STEP_GRAIN
        try:
            return self._connection().execute(statement, params).all()
        except DBAPIError:
            if self._grains_left >= 0:  # an error, not the budget: the connection goes
                self._drop()
        return await self.threads.run(lambda conn: conn.execute(statement, params).all())

    def _over_budget(self) -> bool:
        self._grains_left -= 1
        return self._grains_left < 0  # true: SQLite interrupts the statement

    def _connection(self) -> Connection:
        if self._held is None:
            conn = self.engine.connect()
            try:
                conn.exec_driver_sql("PRAGMA busy_timeout = 0")
                driver = conn.connection.dbapi_connection
                assert driver is not None
                driver.set_progress_handler(self._over_budget, self.STEP_GRAIN)
            except BaseException:
                conn.invalidate()  # never back to the pool, where the threads take theirs
                conn.close()
                raise
            self._held = conn
        return self._held

    def _drop(self) -> None:
        if self._held is not None:
            self._held.invalidate()  # its busy timeout is not the threads': closed, not pooled
            self._held.close()
            self._held = None

    def close(self) -> None:
        self._drop()


class PostgresAsync(DirectReads):
    """PostgreSQL through psycopg's asynchronous connections (at most ``size``, opened when
    first needed, with the reads' engine's parameters: its database, options and psycopg
    adapters; autocommit). The statement is SQLAlchemy's, compiled once for the engine's
    dialect; only statements whose columns and parameters SQLAlchemy passes through unchanged
    on psycopg are taken (checked when compiled), so the rows are those the engine gives.

    As in the threads: a connection the server dropped is noticed by the statement; then
    every idle connection is dropped too, and the read runs once more on a new one. Any other
    error drops the connection it happened on. Errors are SQLAlchemy's (``OperationalError``
    ...), as the engine would raise them, so that they are answered the same way (503).
    """

    def __init__(self, engine: Engine, size: int) -> None:
        self.dialect = engine.dialect
        self._cargs, self._cparams = engine.dialect.create_connect_args(engine.url)
        self._slots = asyncio.Semaphore(size)
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._sql: dict[int, tuple[Select[Any], str]] = {}
        self._closed = False

    async def all(self, statement: Select[Any], params: dict[str, Any]) -> Sequence[Row]:
        sql = self.compiled(statement)
        async with self._slots:
            for attempt in (1, 2):
                conn = self._idle.pop() if self._idle else None
                try:
                    if conn is None:
                        conn = await psycopg.AsyncConnection.connect(*self._cargs, autocommit=True, **self._cparams)
                    cursor = await conn.execute(sql, params)
                    rows = await cursor.fetchall()
                except psycopg.Error as exc:
                    dropped = conn is not None and (conn.closed or conn.broken)
                    if conn is not None:
                        _discard(conn)
                    if dropped:
                        self._drop_idle()
                    if attempt == 2 or not dropped:
                        raise DBAPIError.instance(
                            sql, params, exc, psycopg.Error, connection_invalidated=dropped, dialect=self.dialect
                        ) from exc
                    continue
                except BaseException:  # cancelled mid-statement: the connection's state is unknown
                    if conn is not None:
                        _discard(conn)
                    raise
                if self._closed:
                    _discard(conn)
                else:
                    self._idle.append(conn)
                return rows
        raise AssertionError("unreachable")

    def compiled(self, statement: Select[Any]) -> str:
        """The statement's SQL for psycopg, compiled once (the statements are built once)."""
        known = self._sql.get(id(statement))
        if known is not None and known[0] is statement:
            return known[1]
        compiled = statement.compile(dialect=self.dialect)
        for column in statement.selected_columns:
            if column.type.dialect_impl(self.dialect).result_processor(self.dialect, None) is not None:
                raise ValueError(f"column {column.name!r} needs SQLAlchemy's processing of its values")
        for name, bind in compiled.binds.items():
            if bind.expanding or bind.type.dialect_impl(self.dialect).bind_processor(self.dialect) is not None:
                raise ValueError(f"parameter {name!r} needs SQLAlchemy's processing")
        sql = compiled.string
        self._sql[id(statement)] = (statement, sql)
        return sql

    def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            _discard(conn)

    def close(self) -> None:
        """Close the idle connections; those in use are closed when their read ends."""
        self._closed = True
        self._drop_idle()


def _discard(conn: psycopg.AsyncConnection[Any]) -> None:
    # What AsyncConnection.close() does outside a pool, without its coroutine: close() is
    # called from synchronous code (a shutdown) and from a cancelled task.
    conn.pgconn.finish()
