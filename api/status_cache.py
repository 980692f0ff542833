"""A per-process micro-cache of ``GET /projects/{id}/status`` bodies.

Only a project at rest is kept: awaiting answers or approval, ready, failed or cancelled,
which only a client's act moves on. Its body may be up to ``status_cache_seconds`` (at most
1 s) old: writes made through other API processes show within that time, and a write made
through this process drops the entry at once (``api.status_middleware``). A project in
motion (queued, generating) is read afresh for every poll, so a poller sees the workflow's
``ready`` as soon as it is stored, not a cache lifetime later; polls of one project that
arrive together still share one read. An entry records its owner and is served to nobody
else; 404s are never cached, so a project created elsewhere is visible at once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
from sqlalchemy import Connection

from api.direct_reads import DirectReads, PostgresAsync
from api.errors import project_not_found
from api.memo import ExpiringCache
from api.read_json import status_json
from api.read_threads import ReadThreads
from api.reads import ProjectReads
from api.status_batches import StatusBatches
from store.reads import STATUS_COLUMNS, project_status, status_query

MAX_ENTRIES = 10_000
_STATUS_AT = [column.name for column in STATUS_COLUMNS].index("status")  # where a status row has it
# Statuses the workflow leaves by itself, without a client's act: never kept.
IN_MOTION = frozenset({"queued", "generating"})
clock = time.monotonic


@dataclass(frozen=True)
class _Entry:
    owner_id: int
    body: bytes


@dataclass
class _Read:
    """A read under way: the polls that arrive meanwhile take its body."""

    owner_id: int
    writes: int  # the write count it started at
    done: anyio.Event = field(default_factory=anyio.Event)
    body: bytes | None = None  # None until it has succeeded


class StatusCache:
    def __init__(self, reads: ProjectReads, ttl: float) -> None:
        self.reads = reads
        self.ttl = ttl
        self._entries: ExpiringCache[int, _Entry] = ExpiringCache(MAX_ENTRIES)
        # Bumped by every write: a read that overlapped one may have seen the row before it,
        # so its body is returned to its own poll but neither kept nor shared.
        self._writes = 0
        self._reads: dict[int, _Read] = {}
        # The read without a thread hop (api.direct_reads), where the reads have one.
        threads = getattr(reads, "threads", None)
        self._direct: DirectReads | None = threads.direct if isinstance(threads, ReadThreads) else None
        # On PostgreSQL the polls of a turn of the loop share a statement (api.status_batches).
        self._batches = StatusBatches(self._direct) if isinstance(self._direct, PostgresAsync) else None

    def cached(self, *, owner_id: int, project_id: int) -> bytes | None:
        """The body kept for this owner's project, if it is fresh."""
        entry = self._entries.get(project_id, clock())
        return entry.body if entry is not None and entry.owner_id == owner_id else None

    async def body(self, *, owner_id: int, project_id: int) -> bytes:
        """The status as JSON, the bytes the route's response model would give (api.read_json)."""
        if self.ttl <= 0:  # no cache: nothing to keep, and no read to share
            body, _ = await self._fetch(owner_id, project_id)
            return body
        kept = self.cached(owner_id=owner_id, project_id=project_id)
        if kept is not None:
            return kept
        reading = self._reads.get(project_id)
        if reading is not None:
            # Dozens of polls of a busy project at once, or of one in motion (never kept):
            # one reads, the others take its answer.
            await reading.done.wait()
            if reading.body is not None and reading.owner_id == owner_id and reading.writes == self._writes:
                return reading.body
        return await self._read_and_keep(owner_id, project_id)

    async def _read_and_keep(self, owner_id: int, project_id: int) -> bytes:
        started = clock()
        reading = _Read(owner_id=owner_id, writes=self._writes)
        self._reads.setdefault(project_id, reading)
        try:
            body, at_rest = await self._fetch(owner_id, project_id)
            reading.body = body
        finally:
            if self._reads.get(project_id) is reading:
                del self._reads[project_id]
            reading.done.set()
        if at_rest and self._writes == reading.writes:
            self._entries.put(project_id, _Entry(owner_id, body), started + self.ttl)
        return body

    def invalidate(self, project_id: int) -> None:
        self._writes += 1
        self._entries.pop(project_id)

    async def _fetch(self, owner_id: int, project_id: int) -> tuple[bytes, bool]:
        """The body, and whether the project is at rest (so the body may be kept)."""
        if self._batches is not None:
            row = await self._batches.row(owner_id=owner_id, project_id=project_id)
        elif self._direct is not None:
            row = await self._direct.one(*status_query(owner_id=owner_id, project_id=project_id))
        else:
            return await self.reads.run(self._read, owner_id, project_id)
        return self._answer(row, project_id)

    @staticmethod
    def _read(conn: Connection, owner_id: int, project_id: int) -> tuple[bytes, bool]:
        return StatusCache._answer(project_status(conn, owner_id=owner_id, project_id=project_id), project_id)

    @staticmethod
    def _answer(row: Sequence[Any] | None, project_id: int) -> tuple[bytes, bool]:
        if row is None:
            raise project_not_found(project_id)
        return status_json(row), row[_STATUS_AT] not in IN_MOTION
