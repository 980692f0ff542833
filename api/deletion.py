"""DELETE of a project: archived, and its run cancelled, all or nothing."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api.errors import ApiError, project_not_found
from api.lifecycle_schemas import ArchivedProject
from api.lifecycle_service import cancel_project
from store.db import Database
from store.models import Project, utcnow
from store.projects import archive_project, unarchive_project
from workflows.types import TERMINAL_STATUSES

log = logging.getLogger("forgeflow.api")


async def delete_project(*, db: Database, temporal: Client, project: Project) -> ArchivedProject:
    """Archive the project, then cancel its run if it has one: done, or an error with
    nothing changed. The archive is a write like any other (the write lock: on SQLite a
    read-then-write transaction fails outright when a worker wrote the project in between,
    which right after a create it does); if the cancel cannot be sent, the archive is undone
    and the answer is 503, with the run untouched."""
    now = utcnow()
    if not await run_in_threadpool(_archive, db, project, now):
        raise project_not_found(project.id)  # a concurrent DELETE archived it first
    if project.status not in TERMINAL_STATUSES:
        try:
            await cancel_project(temporal=temporal, project=project)
        except ApiError as exc:
            if exc.status_code != 409:  # 409: the run ended meanwhile; archiving was all there was
                await _unarchive(db, project.id, now)
                raise
        except BaseException:
            await _unarchive(db, project.id, now)
            raise
    return ArchivedProject(id=project.id, status="archived")


def _archive(db: Database, project: Project, now: datetime) -> bool:
    with db.session(write_lock=True) as session:
        return archive_project(session, owner_id=project.owner_id, project_id=project.id, now=now)


async def _unarchive(db: Database, project_id: int, archived_at: datetime) -> None:
    def restore() -> None:
        with db.session(write_lock=True) as session:
            unarchive_project(session, project_id=project_id, archived_at=archived_at)

    try:
        # Shielded: a DELETE cancelled while it undoes its archive still undoes it.
        await asyncio.shield(run_in_threadpool(restore))
    except Exception:
        log.exception("project %s stays archived although its run could not be cancelled", project_id)
