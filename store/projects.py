"""Project rows: created by the API, then changed only by the workflow's activities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.orm import Session

from store.models import Owner, Project, utcnow


class QuotaExceeded(Exception):
    def __init__(self, quota: int) -> None:
        super().__init__(f"project quota of {quota} reached")
        self.quota = quota


class ProjectMissing(Exception):
    """A projection write for a project row that does not exist."""


def count_active_projects(session: Session, *, owner_id: int) -> int:
    stmt = select(func.count(Project.id)).where(Project.owner_id == owner_id, Project.archived_at.is_(None))
    return session.scalar(stmt) or 0


def create_project(
    session: Session,
    *,
    owner_id: int,
    quota: int,
    name: str,
    slug: str,
    description: str,
    template: str,
    input_payload: dict[str, Any],
    require_approval: bool = False,
    webhook_url: str | None = None,
    template_ref: str | None = None,
    template_commit: str | None = None,
    agent: dict[str, Any] | None = None,
) -> Project:
    """Insert a queued project, counting the owner's quota inside the same transaction.

    The caller opens the session with ``write_lock=True``; the owner row is locked
    too, so concurrent creates of one owner are counted one after the other.
    """
    session.execute(select(Owner.id).where(Owner.id == owner_id).with_for_update())
    if count_active_projects(session, owner_id=owner_id) >= quota:
        raise QuotaExceeded(quota)
    now = utcnow()
    project = Project(
        owner_id=owner_id,
        name=name,
        slug=slug,
        description=description,
        template=template,
        status="queued",
        phase="queued",
        error_message="",
        input_payload=input_payload,
        created_at=now,
        updated_at=now,
        require_approval=require_approval,
        webhook_url=webhook_url,
        template_ref=template_ref,
        template_commit=template_commit,
        agent=agent,
    )
    session.add(project)
    session.flush()
    return project


def discard_project(session: Session, *, project_id: int) -> None:
    """Remove a project whose workflow could not be started, so nothing half-made stays."""
    session.execute(delete(Project).where(Project.id == project_id))


def abandon_project(session: Session, *, project_id: int, reason: str) -> None:
    """Fail and archive a project whose workflow may or may not have started: neither
    counted nor listed, and its id is never handed out again (as a deleted row's may be)."""
    now = utcnow()
    session.execute(
        update(Project)
        .where(Project.id == project_id)
        .values(status="failed", phase="failed", error_message=reason, finished_at=now, updated_at=now, archived_at=now)
    )


def get_project(session: Session, *, owner_id: int, project_id: int) -> Project | None:
    stmt = select(Project).where(Project.id == project_id, Project.owner_id == owner_id, Project.archived_at.is_(None))
    return session.scalars(stmt).one_or_none()


def list_projects(
    session: Session, *, owner_id: int, status: str | None, limit: int, offset: int
) -> tuple[list[Project], int]:
    conditions = [Project.owner_id == owner_id, Project.archived_at.is_(None)]
    if status is not None:
        conditions.append(Project.status == status)
    total = session.scalar(select(func.count(Project.id)).where(*conditions)) or 0
    rows = session.scalars(
        select(Project).where(*conditions).order_by(Project.id.desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), total


@dataclass(frozen=True)
class Projection:
    """One status write from the workflow. ``seq`` orders writes of one project."""

    project_id: int
    seq: int
    status: str
    phase: str
    at: datetime
    error_message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    artifact_key: str | None = None
    artifact_sha256: str | None = None
    artifact_size: int | None = None
    run_number: int | None = None  # the project's current run becomes at least this one
    questions: list[dict[str, Any]] | None = None  # None leaves them as they are
    keeps_artifact: bool = False  # a run that starts without clearing the last artifact (an update)


def apply_projection(session: Session, *, projection: Projection) -> bool:
    """Apply a write unless a later one already landed. Returns whether it changed the row.

    Idempotent: a retried activity sends the same ``seq`` and changes nothing.
    """
    values: dict[str, Any] = {
        "projection_seq": projection.seq,
        "status": projection.status,
        "phase": projection.phase,
        "updated_at": projection.at,
    }
    if projection.started_at is not None:
        # A (new) run starts: what the previous run left behind no longer holds. The same
        # write may also end the run (a run that failed in its first workflow task).
        values.update(started_at=projection.started_at, finished_at=None, error_message="", paused=False)
        if not projection.keeps_artifact:
            values.update(artifact_ready=False, artifact_key=None, artifact_sha256=None, artifact_size=None)
    if projection.error_message is not None:
        values["error_message"] = projection.error_message
    if projection.finished_at is not None:
        values["finished_at"] = projection.finished_at
    if projection.artifact_key is not None:
        values.update(
            artifact_key=projection.artifact_key,
            artifact_sha256=projection.artifact_sha256,
            artifact_size=projection.artifact_size,
            artifact_ready=True,
        )
    if projection.questions is not None:
        values["questions"] = projection.questions
    if projection.run_number is not None:
        # In the same statement: no second read or write of the row for it.
        values["current_run"] = case(
            (Project.current_run < projection.run_number, projection.run_number), else_=Project.current_run
        )
    result = session.execute(
        update(Project)
        .where(Project.id == projection.project_id, Project.projection_seq < projection.seq)
        .values(**values)
    )
    changed = bool(getattr(result, "rowcount", 0))
    if not changed and session.get(Project, projection.project_id) is None:
        raise ProjectMissing(f"project {projection.project_id} does not exist")
    return changed


def set_paused(session: Session, *, project_id: int, paused: bool, at: datetime) -> None:
    """A run's pause or resume. Not ordered with the status writes: it changes nothing
    they write, so whichever lands first, both hold."""
    session.execute(update(Project).where(Project.id == project_id).values(paused=paused, updated_at=at))


def update_details(session: Session, *, project: Project, name: str | None, description: str | None) -> None:
    """Name and description are the client's labels, not generation state: they change
    here directly, and the run keeps generating from what it was given."""
    if name is not None:
        project.name = name
    if description is not None:
        project.description = description
    project.updated_at = utcnow()


def set_agent_budget(session: Session, *, project_id: int, budget: dict[str, Any], at: datetime) -> bool:
    """Replace the budget of a project in agent mode (what its next retry starts with).
    False, and nothing changed, for a project that is not in agent mode (or not there)."""
    project = session.scalars(select(Project).where(Project.id == project_id).with_for_update()).one_or_none()
    if project is None or project.agent is None:
        return False
    project.agent = {**project.agent, "budget": budget}  # a new value: JSON columns see no in-place change
    project.updated_at = at
    return True


def archive_project(session: Session, *, owner_id: int, project_id: int, now: datetime) -> bool:
    """Archive the owner's project: whether this call did (False: unknown, another owner's,
    or archived already). One conditional UPDATE, so of concurrent calls exactly one does."""
    result = session.execute(
        update(Project)
        .where(Project.id == project_id, Project.owner_id == owner_id, Project.archived_at.is_(None))
        .values(archived_at=now, updated_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


def unarchive_project(session: Session, *, project_id: int, archived_at: datetime) -> None:
    """Undo ``archive_project`` (the call that archived at ``archived_at``), when what was
    to follow it could not be done."""
    session.execute(
        update(Project).where(Project.id == project_id, Project.archived_at == archived_at).values(archived_at=None)
    )


def set_template_version(session: Session, *, project_id: int, ref: str | None, commit: str | None) -> None:
    """The template version the project's runs now render: an update's, once its run started."""
    session.execute(update(Project).where(Project.id == project_id).values(template_ref=ref, template_commit=commit))
