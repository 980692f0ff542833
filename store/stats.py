"""Aggregates over the projection for /metrics and the admin stats: each one query,
GROUP BY or SUM, computed when asked (nothing is kept in memory between scrapes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Float, and_, case, cast, func, select
from sqlalchemy.orm import Session

from store.models import Event, Project, Run, Task

# Seconds; a phase waiting for a human (answers, approval) can take days.
PHASE_BUCKETS: tuple[float, ...] = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 86400)
# Phases a project ends in: they have no duration.
FINAL_PHASES = ("done", "failed", "cancelled")


def count_by_status(session: Session, model: type[Project] | type[Run] | type[Task]) -> dict[str, int]:
    rows = session.execute(select(model.status, func.count()).group_by(model.status)).all()
    return {status: count for status, count in rows}


def count_events(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Event)) or 0


@dataclass(frozen=True)
class TaskTotals:
    attempts: int  # every attempt any task made, first ones included
    retries: int  # attempts after the first
    failures: int  # tasks that ended failed


def task_totals(session: Session) -> TaskTotals:
    row = session.execute(
        select(
            func.coalesce(func.sum(Task.attempts), 0),
            func.coalesce(func.sum(case((Task.attempts > 1, Task.attempts - 1), else_=0)), 0),
            func.coalesce(func.sum(case((Task.status == "failed", 1), else_=0)), 0),
        )
    ).one()
    return TaskTotals(attempts=int(row[0]), retries=int(row[1]), failures=int(row[2]))


@dataclass
class Histogram:
    """Cumulative bucket counts (one per bound, then +Inf), the count and the sum."""

    buckets: list[int] = field(default_factory=list)
    count: int = 0
    total: float = 0.0


def _seconds_between(session: Session, start: Any, end: Any) -> ColumnElement[float]:
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return cast(func.extract("epoch", end - start), Float)


def phase_durations(session: Session, bounds: Sequence[float] = PHASE_BUCKETS) -> dict[str, Histogram]:
    """How long projects spent in each phase they have left, from the ``status_changed``
    events (each names the phase entered; the next one ends it). One scan of those events."""
    following = func.lead(Event.created_at).over(partition_by=Event.project_id, order_by=Event.seq)
    changes = (
        select(
            Event.payload["phase"].as_string().label("phase"),
            Event.created_at.label("entered"),
            following.label("left"),
        )
        .where(Event.type == "status_changed")
        .subquery()
    )
    seconds = _seconds_between(session, changes.c.entered, changes.c.left)
    counted = and_(changes.c.left.is_not(None), changes.c.phase.not_in(FINAL_PHASES))
    columns = [func.sum(case((seconds <= bound, 1), else_=0)) for bound in bounds]
    rows = session.execute(
        select(changes.c.phase, func.count(), func.coalesce(func.sum(seconds), 0.0), *columns)
        .where(counted)
        .group_by(changes.c.phase)
    ).all()
    result: dict[str, Histogram] = {}
    for phase, count, total, *buckets in rows:
        cumulative = [int(b or 0) for b in buckets] + [int(count)]
        result[phase] = Histogram(buckets=cumulative, count=int(count), total=float(total))
    return result
