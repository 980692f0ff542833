"""Runs, tasks, spec versions and the ordered event log of a project."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from store.event_filter import EventFilter
from store.models import Event, Project, Run, SpecVersion, Task


@dataclass(frozen=True)
class NewEvent:
    type: str
    key: str  # the same write twice (an activity retry) carries the same key
    payload: dict[str, Any] = field(default_factory=dict)
    task_id: str | None = None


def lock_project(session: Session, *, project_id: int) -> Project | None:
    """Take the project's row lock first in a transaction that will append events, so
    concurrent writers queue on one lock instead of upgrading weaker ones into a deadlock."""
    return session.scalars(select(Project).where(Project.id == project_id).with_for_update()).one_or_none()


def append_events(
    session: Session, *, project_id: int, events: list[NewEvent], at: datetime, locked_seq: int | None = None
) -> list[int]:
    """Append events in order; each gets the project's next number. The project row is
    locked first (and on SQLite the session holds the write lock), so numbers are handed
    out and committed one writer at a time: no reader ever sees N+1 before N."""
    if not events:
        return []
    # Core statements, not the ORM: this runs for every event of every task.
    # ``locked_seq``: the caller has locked the project row already and read the count.
    seq = locked_seq
    if seq is None:
        seq = session.execute(select(Project.event_seq).where(Project.id == project_id).with_for_update()).scalar_one()
    keys = [e.key for e in events]
    seen = set(
        session.scalars(select(Event.dedup_key).where(Event.project_id == project_id, Event.dedup_key.in_(keys)))
    )
    rows: list[dict[str, Any]] = []
    for event in events:
        if event.key in seen:
            continue
        seen.add(event.key)
        seq += 1
        rows.append(
            {
                "project_id": project_id,
                "seq": seq,
                "type": event.type,
                "task_id": event.task_id,
                "payload": event.payload,
                "dedup_key": event.key,
                "created_at": at,
            }
        )
    if rows:
        session.execute(insert(Event), rows)
        # synchronize_session=False: a Project loaded in this session keeps its old count, and
        # nothing reads it; the row is what hands out the next numbers.
        session.execute(
            update(Project).where(Project.id == project_id).values(event_seq=seq),
            execution_options={"synchronize_session": False},
        )
    return [row["seq"] for row in rows]


def list_events(
    session: Session,
    *,
    project_id: int,
    after: int,
    limit: int,
    type: str | None = None,
    task_id: str | None = None,
    where: EventFilter | None = None,
) -> list[Event]:
    conditions = [Event.project_id == project_id, Event.seq > after, *(where.conditions() if where else ())]
    if type is not None:
        conditions.append(Event.type == type)
    if task_id is not None:
        conditions.append(Event.task_id == task_id)
    return list(session.scalars(select(Event).where(*conditions).order_by(Event.seq).limit(limit)))


def get_run(session: Session, *, project_id: int, number: int) -> Run | None:
    return session.scalars(select(Run).where(Run.project_id == project_id, Run.number == number)).one_or_none()


def ensure_run(session: Session, *, project_id: int, number: int, trigger: str, at: datetime) -> Run:
    run = get_run(session, project_id=project_id, number=number)
    if run is None:
        run = Run(project_id=project_id, number=number, trigger=trigger, status="queued", created_at=at, updated_at=at)
        session.add(run)
        session.flush()
    return run


def list_runs(
    session: Session,
    *,
    project_id: int,
    statuses: Sequence[str] = (),
    limit: int | None = None,
    offset: int = 0,
) -> list[Run]:
    """The project's runs in order, those in one of ``statuses`` if any are given."""
    stmt = select(Run).where(Run.project_id == project_id)
    if statuses:
        stmt = stmt.where(Run.status.in_(statuses))
    return list(session.scalars(stmt.order_by(Run.number).limit(limit).offset(offset)))


def task_summaries(session: Session, *, run_ids: list[int]) -> dict[int, dict[str, int]]:
    rows = session.execute(
        select(Task.run_id, Task.status, func.count(Task.id))
        .where(Task.run_id.in_(run_ids))
        .group_by(Task.run_id, Task.status)
    )
    summary: dict[int, dict[str, int]] = {run_id: {} for run_id in run_ids}
    for run_id, status, count in rows:
        summary[run_id][status] = count
    return summary


def ensure_tasks(session: Session, *, run: Run, project_id: int, definitions: list[dict[str, Any]]) -> None:
    """A pending row for each task of the plan that has none yet, in one Core statement
    (the ORM's unit of work was most of the cost of a run's tasks-phase write)."""
    existing = set(session.scalars(select(Task.key).where(Task.run_id == run.id)))
    rows = [
        {
            "run_id": run.id,
            "project_id": project_id,
            "key": definition["id"],
            "slug": definition["slug"],
            "sequence": definition["sequence"],
            "status": "pending",
            "definition": definition,
            "files": [],
            "attempts": 0,
            "error": "",
        }
        for definition in definitions
        if definition["id"] not in existing
    ]
    if rows:
        session.execute(insert(cast(Table, Task.__table__)), rows)


def list_tasks(session: Session, *, run_id: int) -> list[Task]:
    return list(session.scalars(select(Task).where(Task.run_id == run_id).order_by(Task.sequence)))


def get_task(session: Session, *, run_id: int, key: str) -> Task | None:
    return session.scalars(select(Task).where(Task.run_id == run_id, Task.key == key)).one_or_none()


def update_task(session: Session, *, run_id: int, key: str, only_from: tuple[str, ...] = (), **values: Any) -> None:
    """Change one task row; with ``only_from``, only while its status is one of those (so a
    late retry never turns a finished task back into a running one)."""
    update_tasks(session, run_id=run_id, changes=[(key, values)], only_from=only_from)


def update_tasks(
    session: Session, *, run_id: int, changes: Sequence[tuple[str, dict[str, Any]]], only_from: tuple[str, ...] = ()
) -> None:
    """:func:`update_task` for several rows (key, new values): one Core statement for the
    rows that change the same columns, executed for all of them at once. This runs for
    every task of every run, and the ORM's per-statement work was most of its cost."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for key, values in changes:
        params = {"b_run_id": run_id, "b_key": key, **{f"v_{name}": value for name, value in values.items()}}
        groups.setdefault(tuple(sorted(values)), []).append(params)
    table = cast(Table, Task.__table__)
    for columns, rows in groups.items():
        stmt = update(table).where(table.c.run_id == bindparam("b_run_id"), table.c.key == bindparam("b_key"))
        if only_from:  # not IN (...): an expanding parameter cannot be executed for many rows
            stmt = stmt.where(or_(*(table.c.status == status for status in only_from)))
        session.execute(stmt.values({name: bindparam(f"v_{name}") for name in columns}), rows)


def close_open_tasks(session: Session, *, run_id: int, status: str, at: datetime) -> None:
    """At the end of a failed or cancelled run: what never started is skipped or cancelled."""
    session.execute(
        update(Task).where(Task.run_id == run_id, Task.status == "pending").values(status=status, finished_at=at)
    )
    session.execute(
        update(Task)
        .where(Task.run_id == run_id, Task.status == "running")
        .values(status="cancelled" if status == "cancelled" else "failed", finished_at=at)
    )


def record_spec_version(
    session: Session,
    *,
    project_id: int,
    version: int,
    documents: dict[str, str],
    answers: dict[str, Any],
    feedback: list[str],
    at: datetime,
) -> None:
    found = session.scalars(
        select(SpecVersion).where(SpecVersion.project_id == project_id, SpecVersion.version == version)
    ).one_or_none()
    if found is None:
        session.add(
            SpecVersion(
                project_id=project_id,
                version=version,
                documents=documents,
                answers=answers,
                feedback=feedback,
                created_at=at,
            )
        )
    session.execute(
        update(Project).where(Project.id == project_id, Project.spec_version < version).values(spec_version=version)
    )


def decide_spec(session: Session, *, project_id: int, version: int, approved_at: datetime | None, notes: str) -> None:
    session.execute(
        update(SpecVersion)
        .where(SpecVersion.project_id == project_id, SpecVersion.version == version)
        .values(approved_at=approved_at, decision_notes=notes)
    )
    if approved_at is not None:
        session.execute(update(Project).where(Project.id == project_id).values(approved_at=approved_at))


def list_spec_versions(session: Session, *, project_id: int) -> list[SpecVersion]:
    return list(
        session.scalars(select(SpecVersion).where(SpecVersion.project_id == project_id).order_by(SpecVersion.version))
    )
