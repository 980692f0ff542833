"""A per-process micro-cache of ``GET /projects/{id}/status`` bodies.

Clients poll status every 2-15 s and the event stream is the live channel, so a body may be
up to ``status_cache_seconds`` (at most 1 s) old: the workflow's own writes, and writes made
through other API processes, show within that time; a write made through this process drops
the entry at once (``api.status_middleware``). An entry records its owner and is served to
nobody else; 404s are never cached, so a project created elsewhere is visible at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio
from pydantic import TypeAdapter

from api.errors import project_not_found
from api.memo import ExpiringCache
from api.reads import ProjectReads
from api.schemas import ProjectStatusPublic
from store.reads import project_status

MAX_ENTRIES = 10_000
clock = time.monotonic
# What FastAPI serialises a route's response model with: the same bytes, cached or not.
_STATUS_JSON = TypeAdapter(ProjectStatusPublic)


@dataclass(frozen=True)
class _Entry:
    owner_id: int
    body: bytes


class StatusCache:
    def __init__(self, reads: ProjectReads, ttl: float) -> None:
        self.reads = reads
        self.ttl = ttl
        self._entries: ExpiringCache[int, _Entry] = ExpiringCache(MAX_ENTRIES)
        # Bumped by every write: a read that overlapped one may have seen the row before it,
        # so its body is returned but not kept.
        self._writes = 0
        self._reads: dict[int, anyio.Event] = {}

    def cached(self, *, owner_id: int, project_id: int) -> bytes | None:
        """The body kept for this owner's project, if it is fresh."""
        entry = self._entries.get(project_id, clock())
        return entry.body if entry is not None and entry.owner_id == owner_id else None

    async def body(self, *, owner_id: int, project_id: int) -> bytes:
        """The status as JSON, the same bytes the route's response model gives."""
        kept = self.cached(owner_id=owner_id, project_id=project_id)
        if kept is not None:
            return kept
        reading = self._reads.get(project_id) if self.ttl > 0 else None
        if reading is not None:
            # The entry of a busy project expires under dozens of polls at once: one reads.
            await reading.wait()
            kept = self.cached(owner_id=owner_id, project_id=project_id)
            if kept is not None:
                return kept
        return await self._read_and_keep(owner_id, project_id)

    async def _read_and_keep(self, owner_id: int, project_id: int) -> bytes:
        started, writes = clock(), self._writes
        done = anyio.Event()
        self._reads.setdefault(project_id, done)
        try:
            body = await self.reads.run(self._read, owner_id, project_id)
        finally:
            if self._reads.get(project_id) is done:
                del self._reads[project_id]
            done.set()
        if self.ttl > 0 and self._writes == writes:
            self._entries.put(project_id, _Entry(owner_id, body), started + self.ttl)
        return body

    def invalidate(self, project_id: int) -> None:
        self._writes += 1
        self._entries.pop(project_id)

    def _read(self, owner_id: int, project_id: int) -> bytes:
        with self.reads.db.session() as session:
            row = project_status(session, owner_id=owner_id, project_id=project_id)
        if row is None:
            raise project_not_found(project_id)
        return _STATUS_JSON.dump_json(ProjectStatusPublic.model_validate(row, from_attributes=True), by_alias=True)
