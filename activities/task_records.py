"""A task activity reports its own start and result to the projection, so the API can
show tasks live without a workflow round trip per task. Writes are idempotent: event
keys carry the attempt, and a finished task is never moved back to running.

Most tasks take milliseconds: their start goes on record together with their result, in
one transaction. Only a task still running after ``START_RECORD_DELAY`` (or one that
fails) has its start written on its own, so the live view still shows long tasks running."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session
from temporalio import activity

from activities.later import Deferred
from store.db import Database
from store.lifecycle import NewEvent, append_events, update_tasks
from store.models import Project, Run
from workflows.types import TaskDefinition, TaskResult, TemplateRequest

OPEN = ("pending", "running")
START_RECORD_DELAY = 0.25  # seconds

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
            if not info.is_local:  # a local activity (prepare's carried write) has no heartbeat
                activity.heartbeat("waiting for the database")
            beat = info.heartbeat_timeout.total_seconds() / 2 if info.heartbeat_timeout else 5.0
            time.sleep(min(delay, beat))
            delay = min(delay * 2, 5.0)


class TaskRecorder:
    def __init__(self, db: Database, *, start_delay: float = START_RECORD_DELAY) -> None:
        self._db = db
        self._start_delay = start_delay
        self._run_ids: dict[tuple[int, int], int] = {}

    def _run_id(self, session: Session, request: TemplateRequest) -> int | None:
        # A run's id never changes: looked up once per run, not once per task.
        key = (request.project_id, request.run_number)
        found = self._run_ids.get(key)
        if found is None:
            found = session.execute(
                select(Run.id).where(Run.project_id == request.project_id, Run.number == request.run_number)
            ).scalar_one_or_none()
            if found is not None:
                if len(self._run_ids) >= 1024:
                    self._run_ids.clear()
                self._run_ids[key] = found
        return found

    def _write_many(
        self, request: TemplateRequest, rows: list[tuple[TaskDefinition, list[NewEvent], dict[str, Any]]], now: datetime
    ) -> None:
        """Several tasks' records in one transaction (tasks that shared an activity)."""

        def write() -> None:
            with self._db.session(write_lock=True) as session:
                # The project lock comes first, as in every writer of events (see lock_project).
                seq = session.execute(
                    select(Project.event_seq).where(Project.id == request.project_id).with_for_update()
                ).scalar_one_or_none()
                run_id = self._run_id(session, request) if seq is not None else None
                if seq is None or run_id is None:
                    return  # the project or its run is gone: nothing to record against
                changes = [(task.id, values) for task, _events, values in rows]
                update_tasks(session, run_id=run_id, changes=changes, only_from=OPEN)
                events = [event for _task, task_events, _values in rows for event in task_events]
                append_events(session, project_id=request.project_id, events=events, at=now, locked_seq=seq)

        until_stored(write)

    def begin(self, request: TemplateRequest, task: TaskDefinition, attempt: int) -> PendingStart:
        """Start the clock on a task: its start is written if it runs long, else with its result."""
        start = PendingStart(request, task, attempt)
        start.arm(lambda: self.started(start), self._start_delay)
        return start

    @staticmethod
    def _start(start: PendingStart) -> tuple[NewEvent, dict[str, Any]]:
        """The start of an attempt: its event and the task row's columns."""
        request, task = start.request, start.task
        event = NewEvent(
            type="task_started",
            key=f"task_started:{request.run_number}:{task.id}:{start.attempt}",
            payload={"slug": task.slug, "sequence": task.sequence, "attempt": start.attempt},
            task_id=task.id,
        )
        first = {"started_at": start.at} if start.attempt == 1 else {}
        return event, {"attempts": start.attempt, **first}

    def started(self, start: PendingStart) -> None:
        event, values = self._start(start)
        self._write_many(start.request, [(start.task, [event], {"status": "running", **values})], start.at)

    def failed_attempt(self, start: PendingStart) -> None:
        """An attempt that failed before its start was written still counts, on record."""
        if not start.settle():
            self.started(start)

    def succeeded(self, start: PendingStart, result: TaskResult) -> None:
        self.succeeded_many([(start, result)])

    def succeeded_many(self, done: list[tuple[PendingStart, TaskResult]]) -> None:
        if not done:
            return
        now = datetime.now(UTC)
        rows = [self._success(start, result, now) for start, result in done]
        self._write_many(done[0][0].request, rows, now)

    def _success(
        self, start: PendingStart, result: TaskResult, now: datetime
    ) -> tuple[TaskDefinition, list[NewEvent], dict[str, Any]]:
        request, task = start.request, start.task
        base = f"{request.run_number}:{task.id}"
        unrecorded: dict[str, Any] = {}
        events = []
        if not start.settle():
            event, unrecorded = self._start(start)
            events.append(event)
        events += [
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
                payload={
                    "slug": task.slug,
                    "branch": result.branch,
                    "commit_sha": result.commit_sha,
                    # What a coding agent said it did and what it worries about (the run's summary).
                    **({"summary": result.summary, "risks": result.risks} if result.summary or result.risks else {}),
                },
            ),
        ]
        values = {
            "status": "succeeded",
            "files": result.files,
            "branch_name": result.branch,
            "commit_sha": result.commit_sha,
            "error": "",
            "finished_at": now,
            **unrecorded,
        }
        return task, events, values


class PendingStart:
    """A task's start, written by the process's delayed-call thread (``activities.later``)
    once the task has run ``START_RECORD_DELAY`` unless the task settles first; ``settle``
    says whether it was written."""

    def __init__(self, request: TemplateRequest, task: TaskDefinition, attempt: int) -> None:
        self.request, self.task, self.attempt = request, task, attempt
        self.at = datetime.now(UTC)
        self._written = False
        self._deferred: Deferred | None = None

    def arm(self, write: Callable[[], None], delay: float) -> None:
        if delay <= 0:
            write()
            self._written = True
            return
        # A failed write is logged; the result's write then records the start instead.
        self._deferred = Deferred(delay, write, what=f"recording the start of task {self.task.id}")

    def settle(self) -> bool:
        if self._deferred is not None:
            return self._deferred.take()
        return self._written
