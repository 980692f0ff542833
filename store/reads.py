"""Reads for the API's hottest paths: the status poll (only the columns it shows, no ORM
objects) and the project list (no COUNT when the page itself tells the total)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, or_, select
from sqlalchemy.orm import Session

from store.models import Project

STATUS_COLUMNS = (
    Project.id,
    Project.status,
    Project.error_message,
    Project.artifact_ready,
    Project.started_at,
    Project.finished_at,
    Project.updated_at,
)


StatusRow = Row[int, str, str, bool, datetime | None, datetime | None, datetime]


def project_status(session: Session, *, owner_id: int, project_id: int) -> StatusRow | None:
    """The status columns of the owner's project; None if it is not theirs, or archived."""
    stmt = select(*STATUS_COLUMNS).where(
        Project.id == project_id, Project.owner_id == owner_id, Project.archived_at.is_(None)
    )
    return session.execute(stmt).one_or_none()


# The list's orders, each ended by the id so that pages never overlap or skip rows that tie.
# Names sort case-insensitively, the same on SQLite (binary by default) and PostgreSQL.
SORTS: dict[str, tuple[Any, ...]] = {
    "created_at": (Project.created_at.asc(), Project.id.asc()),
    "-created_at": (Project.created_at.desc(), Project.id.desc()),
    "updated_at": (Project.updated_at.asc(), Project.id.asc()),
    "-updated_at": (Project.updated_at.desc(), Project.id.desc()),
    "name": (func.lower(Project.name).asc(), Project.id.asc()),
    "-name": (func.lower(Project.name).desc(), Project.id.desc()),
}


def project_page(
    session: Session,
    *,
    owner_id: int,
    status: str | Sequence[str] | None,
    limit: int,
    offset: int,
    q: str | None = None,
    sort: str | None = None,
) -> tuple[list[Project], int]:
    """The owner's projects, newest first unless ``sort`` says otherwise, and how many there
    are in all (archived ones not). ``status``: one or several; ``q``: a case-insensitive
    substring of the name or description, matched literally (``%`` and ``_`` escaped)."""
    conditions = [Project.owner_id == owner_id, Project.archived_at.is_(None)]
    statuses = [status] if isinstance(status, str) else list(status or ())
    if len(statuses) == 1:
        conditions.append(Project.status == statuses[0])
    elif statuses:
        conditions.append(Project.status.in_(statuses))
    if q:
        conditions.append(
            or_(Project.name.icontains(q, autoescape=True), Project.description.icontains(q, autoescape=True))
        )
    # No sort: the primary key, newest first, as before sorting existed (no sort step).
    order = SORTS[sort] if sort else (Project.id.desc(),)
    stmt = select(Project).where(*conditions).order_by(*order).limit(limit).offset(offset)
    rows = list(session.scalars(stmt).all())
    # A page that is neither full nor past the end holds the last project: no need to count.
    if 0 < len(rows) < limit or (not rows and offset == 0):
        return rows, offset + len(rows)
    return rows, session.scalar(select(func.count(Project.id)).where(*conditions)) or 0


def status_counts(session: Session, *, owner_id: int) -> dict[str, int]:
    """How many of the owner's projects are in each status (archived ones not): one GROUP BY
    on the (owner_id, status) index. Statuses with no project are absent."""
    stmt = (
        select(Project.status, func.count(Project.id))
        .where(Project.owner_id == owner_id, Project.archived_at.is_(None))
        .group_by(Project.status)
    )
    return {status: count for status, count in session.execute(stmt)}
