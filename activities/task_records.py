"""A task activity reports its own start and result to the projection, so the API can
show tasks live without a workflow round trip per task. Writes are idempotent: event
keys carry the attempt, and a finished task is never moved back to running."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session
from temporalio import activity

from store.db import Database
from store.lifecycle import NewEvent, append_events, get_run, lock_project, update_task
from workflows.types import TaskDefinition, TaskResult, TemplateRequest

OPEN = ("pending", "running")

log = logging.getLogger("forgeflow.activities")

# The database being away is no fault of the task: its records wait for it, heartbeating so
# Temporal knows this worker is alive, instead of spending the task's few retries (which a
# database outage of a quarter of a minute would otherwise exhaust, failing the project).
UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout)


def until_stored(write: Callable[[], None]) -> None:
    delay = 0.2
    while True:
        try:
            return write()
        except UNAVAILABLE as exc:
            if not activity.in_activity() or activity.is_cancelled():
                raise
            info = activity.info()
            log.warning("database unavailable for %s; retrying: %s", info.activity_type, type(exc).__name__)
            activity.heartbeat("waiting for the database")
            beat = info.heartbeat_timeout.total_seconds() / 2 if info.heartbeat_timeout else 5.0
            time.sleep(min(delay, beat))
            delay = min(delay * 2, 5.0)


class TaskRecorder:
    def __init__(self, db: Database) -> None:
        self._db = db

    @contextmanager
    def _task_row(self, request: TemplateRequest, task: TaskDefinition) -> Iterator[tuple[Session, int] | None]:
        # The project lock comes first, as in every writer of events (see lock_project).
        with self._db.session(write_lock=True) as session:
            lock_project(session, project_id=request.project_id)
            run = get_run(session, project_id=request.project_id, number=request.run_number)
            yield (session, run.id) if run is not None else None

    def _write(
        self, request: TemplateRequest, task: TaskDefinition, events: list[NewEvent], now: datetime, **values: Any
    ) -> None:
        def write() -> None:
            with self._task_row(request, task) as row:
                if row is None:
                    return
                session, run_id = row
                update_task(session, run_id=run_id, key=task.id, only_from=OPEN, **values)
                append_events(session, project_id=request.project_id, events=events, at=now)

        until_stored(write)

    def started(self, request: TemplateRequest, task: TaskDefinition, attempt: int) -> None:
        event = NewEvent(
            type="task_started",
            key=f"task_started:{request.run_number}:{task.id}:{attempt}",
            payload={"slug": task.slug, "sequence": task.sequence, "attempt": attempt},
            task_id=task.id,
        )
        now = datetime.now(UTC)
        first = {"started_at": now} if attempt == 1 else {}
        self._write(request, task, [event], now, status="running", attempts=attempt, **first)

    def succeeded(self, request: TemplateRequest, task: TaskDefinition, result: TaskResult) -> None:
        base = f"{request.run_number}:{task.id}"
        events = [
            NewEvent(
                type="task_files",
                key=f"task_files:{base}",
                task_id=task.id,
                payload={"files": result.files[:500], "count": len(result.files)},
            ),
            NewEvent(
                type="task_succeeded",
                key=f"task_succeeded:{base}",
                task_id=task.id,
                payload={"slug": task.slug, "branch": result.branch, "commit_sha": result.commit_sha},
            ),
        ]
        now = datetime.now(UTC)
        self._write(
            request,
            task,
            events,
            now,
            status="succeeded",
            files=result.files,
            branch_name=result.branch,
            commit_sha=result.commit_sha,
            error="",
            finished_at=now,
        )
