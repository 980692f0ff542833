"""Status polls that arrive together read their projects with one statement (PostgreSQL).

Under load the polls of many clients arrive in the same turn of the event loop, each for a
project of its own. A round trip to PostgreSQL per poll costs more than the row it reads:
psycopg's machinery and a socket write and wake-up in the API's process, a turn of a server
process beside it. Here the polls of one turn are read at the start of the next, all their
projects in one statement (``id = ANY(...)``), and each poll takes its own row, or none when
the project is not its owner's. A batch under way takes no newcomer: every poll's statement
starts after the poll arrived, so it sees every write committed before it, as a statement of
its own would. Measured under the uncached reads benchmark (bench/reads.py, PostgreSQL, 50
connections): see BENCHMARKS.md, session 9.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Integer, any_, bindparam, cast, select
from sqlalchemy.dialects.postgresql import ARRAY

from api.direct_reads import DirectReads, Row
from store.reads import STATUS_COLUMNS, projects

# At most this many projects a statement; more polls in a turn make more statements.
MAX_BATCH = 100
# The status columns and the owner, of the projects asked for that are not archived. The
# array is cast in SQL: psycopg sends the list as it is (no SQLAlchemy processing).
STATUS_ROWS = select(*STATUS_COLUMNS, projects.owner_id).where(
    projects.id == any_(cast(bindparam("ids"), ARRAY(Integer))), projects.archived_at.is_(None)
)
_Poll = tuple[int, "asyncio.Future[Row | None]"]  # the owner asking, and where its row goes


class StatusBatches:
    def __init__(self, direct: DirectReads) -> None:
        self.direct = direct
        self._waiting: dict[int, list[_Poll]] = {}  # by project id, the polls of this turn
        self._reads: set[asyncio.Task[None]] = set()

    async def row(self, *, owner_id: int, project_id: int) -> Row | None:
        """The status row of the owner's project (store.reads.STATUS_COLUMNS), None if it is
        not theirs or is archived; errors are the database's, as DirectReads.one raises them."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Row | None] = loop.create_future()
        if not self._waiting:  # the turn's first poll: the batch is read once the turn ends
            loop.call_soon(self._read_batch)
        self._waiting.setdefault(project_id, []).append((owner_id, future))
        return await future

    def _read_batch(self) -> None:
        waiting, self._waiting = self._waiting, {}
        ids = list(waiting)
        for start in range(0, len(ids), MAX_BATCH):
            batch = {project_id: waiting[project_id] for project_id in ids[start : start + MAX_BATCH]}
            task = asyncio.get_running_loop().create_task(self._read(batch))
            self._reads.add(task)  # held until done: the loop keeps only weak references
            task.add_done_callback(self._reads.discard)

    async def _read(self, batch: dict[int, list[_Poll]]) -> None:
        polls = [future for waiting in batch.values() for _, future in waiting]
        try:
            rows: Sequence[Any] = await self.direct.all(STATUS_ROWS, {"ids": list(batch)})
        except asyncio.CancelledError:  # the loop is closing: so are the polls
            for future in polls:
                future.cancel()
            raise
        except Exception as exc:  # each poll's to answer (the route reads again, or 503)
            for future in polls:
                if not future.done():
                    future.set_exception(exc)
            return
        found = {row[0]: row for row in rows}
        for project_id, waiting in batch.items():
            row = found.get(project_id)
            for owner_id, future in waiting:
                if not future.done():  # a poll whose client went away is cancelled
                    future.set_result(tuple(row[:-1]) if row is not None and row[-1] == owner_id else None)
