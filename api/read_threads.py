"""The threads the API's project reads run in: a few, each holding one connection of the
reads' engine (store.reads.read_engine) for as long as it lives, all serving one queue.

A read is one hop from the event loop to a thread and back, and nothing else: no pool
checkout and return around it (~50 us on SQLite, measured), no Future with its condition
variable per call (``run_in_executor``: ~20 us a call with 50 callers waiting; AnyIO's
``to_thread`` with a limiter: ~150 us). Reads beyond the thread count wait in the queue.
Reads are mostly Python work (rows, datetimes, JSON), so threads beyond a couple only
contend for the GIL (``api_read_threads``: raise it when the database is far enough away
that reads mostly wait on the network).

A connection the server dropped (a restart) is noticed by the statement instead of a ping
before it: SQLAlchemy then invalidates the pool's connections, and the read runs once more
on a fresh one. Any other database error also drops the thread's connection, so that no
read inherits the state of one that failed.

The hop is cheap alone (~3 us measured in a tight loop) but not in a busy server: the loop
thread and the read threads pass the GIL back and forth several times a read, and every
pass is a futex wake-up, with the loop woken through its self-pipe at the end. Measured
under the uncached reads benchmark (bench/reads.py): 110-150 us of system time and 370-490
us of CPU a status poll on SQLite, against 40 and 240 us with the read made on the loop.
So the status poll, the hottest read, skips the hop (``DirectReads``): on SQLite its primary
key lookup runs in the loop's thread (~25 us, bounded), on PostgreSQL on psycopg's
asynchronous connections, so the loop waits on a socket, not on a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
from sqlalchemy import Connection, Engine, Select
from sqlalchemy.exc import DBAPIError

T = TypeVar("T")
# (the caller's context, the read, the caller's loop, the future it awaits); None: stop.
_Item = tuple[contextvars.Context, Callable[[Connection], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the request went away (its task was cancelled)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class ReadThreads:
    def __init__(self, engine: Engine, count: int) -> None:
        self.engine = engine
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._serve, name=f"forgeflow-read-{n}", daemon=True) for n in range(count)
        ]
        for thread in self._threads:
            thread.start()
        # Reads made without the hop, for those who ask (api.status_cache); None: no such way.
        self.direct = direct_reads(engine, count, self)

    async def run(self, read: Callable[[Connection], T]) -> T:
        """``read(connection)`` in one of the threads, in the caller's context (the request
        id in its logs, as AnyIO's ``to_thread`` would run it)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((contextvars.copy_context(), read, loop, future))
        return await future

    def close(self) -> None:
        """Stop the threads once the reads queued so far are done; each closes its connection."""
        for _ in self._threads:
            self._queue.put(None)
        if self.direct is not None:
            self.direct.close()

    def _serve(self) -> None:
        held: list[Connection] = []  # this thread's connection, once it has one
        while (item := self._queue.get()) is not None:
            context, read, loop, future = item
            try:
                result, error = context.run(self._read, held, read), None
            except BaseException as exc:  # handed to the caller, whatever it is
                result, error = None, exc
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
                loop.call_soon_threadsafe(_settle, future, result, error)
        for conn in held:
            conn.close()

    def _read(self, held: list[Connection], read: Callable[[Connection], T]) -> T:
        for attempt in (1, 2):
            if not held:
                held.append(self.engine.connect())
            try:
                return read(held[0])
            except DBAPIError as exc:
                held.pop().close()
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")


Row = Sequence[Any]


class DirectReads:
    """A statement read from the event loop itself, without the hop to a read thread.

    ``one``: a statement of bounded cost that returns a row or none (the status poll's
    primary key lookup). ``all``: any statement's rows, where ``serves_pages`` (the database
    does the work in a server of its own, the loop only waits: a page of the list, whose
    walk and count grow with the owner's projects).
    """

    serves_pages = False

    async def one(self, statement: Select[Any], params: dict[str, Any]) -> Row | None:
        raise NotImplementedError

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
    (store.reads.read_engine keeps one for it), for reads of bounded cost alone (``one``): the
    loop waits for SQLite's work (a status poll: ~10 us). Pages stay in the threads: measured
    from the loop, 20 % less CPU a page but no steadier throughput, and a longer tail.

    A WAL database's readers do not wait for its writers; if a lock is ever met (another
    connection recovering the WAL after a crash), the connection does not wait for it (a busy
    timeout of 0, where the threads' connections wait up to 30 s): the read fails at once, the
    connection is dropped and the read is made again in a read thread, which waits off the
    loop and retries as any read does. So does any other database error.
    """

    def __init__(self, engine: Engine, threads: ReadThreads) -> None:
        self.engine = engine
        self.threads = threads
        self._held: Connection | None = None

    async def one(self, statement: Select[Any], params: dict[str, Any]) -> Row | None:
        try:
            return self._connection().execute(statement, params).one_or_none()
        except DBAPIError:
            self._drop()
        return await self.threads.run(lambda conn: conn.execute(statement, params).one_or_none())

    def _connection(self) -> Connection:
        if self._held is None:
            conn = self.engine.connect()
            try:
                conn.exec_driver_sql("PRAGMA busy_timeout = 0")
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

    serves_pages = True

    def __init__(self, engine: Engine, size: int) -> None:
        self.dialect = engine.dialect
        self._cargs, self._cparams = engine.dialect.create_connect_args(engine.url)
        self._slots = asyncio.Semaphore(size)
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._sql: dict[int, tuple[Select[Any], str]] = {}
        self._closed = False

    async def one(self, statement: Select[Any], params: dict[str, Any]) -> Row | None:
        rows = await self.all(statement, params)
        if len(rows) > 1:
            raise ValueError("the statement returned more than one row")
        return rows[0] if rows else None

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
