"""Reads for the API's hottest paths: the status poll (only the columns it shows, no ORM
objects) and the project list (no COUNT when the page itself tells the total)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Row, func, select
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


def project_page(
    session: Session, *, owner_id: int, status: str | None, limit: int, offset: int
) -> tuple[list[Project], int]:
    """The owner's projects, newest first, and how many there are in all (archived ones not)."""
    conditions = [Project.owner_id == owner_id, Project.archived_at.is_(None)]
    if status is not None:
        conditions.append(Project.status == status)
    stmt = select(Project).where(*conditions).order_by(Project.id.desc()).limit(limit).offset(offset)
    rows = list(session.scalars(stmt).all())
    # A page that is neither full nor past the end holds the last project: no need to count.
    if 0 < len(rows) < limit or (not rows and offset == 0):
        return rows, offset + len(rows)
    return rows, session.scalar(select(func.count(Project.id)).where(*conditions)) or 0
