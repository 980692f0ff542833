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
So the status poll and the plain page, the hottest reads, skip the hop (api.direct_reads):
on SQLite in the loop's thread, within a budget of SQLite's steps (a poll ~25 us, a page of
1,000 projects' owner ~150 us), on PostgreSQL on psycopg's asynchronous connections, so the
loop waits on a socket, not on a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from api.direct_reads import DirectReads, direct_reads

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
        self.direct: DirectReads | None = direct_reads(engine, count, self)

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
