"""A task activity reports its own start and result to the projection, so the API can
show tasks live without a workflow round trip per task. Writes are idempotent: event
keys carry the attempt, and a finished task is never moved back to running."""

from __future__ import annotations

from datetime import UTC, datetime

from store.db import Database
from store.lifecycle import NewEvent, append_events, get_run, lock_project, update_task
from workflows.types import TaskDefinition, TaskResult, TemplateRequest


class TaskRecorder:
    def __init__(self, db: Database) -> None:
        self._db = db

    def started(self, request: TemplateRequest, task: TaskDefinition, attempt: int) -> None:
        now = datetime.now(UTC)
        with self._db.session(write_lock=True) as session:
            lock_project(session, project_id=request.project_id)
            run = get_run(session, project_id=request.project_id, number=request.run_number)
            if run is None:
                return
            update_task(
                session,
                run_id=run.id,
                key=task.id,
                only_from=("pending", "running"),
                status="running",
                attempts=attempt,
            )
            if attempt == 1:
                update_task(session, run_id=run.id, key=task.id, only_from=("running",), started_at=now)
            event = NewEvent(
                type="task_started",
                key=f"task_started:{request.run_number}:{task.id}:{attempt}",
                payload={"slug": task.slug, "sequence": task.sequence, "attempt": attempt},
                task_id=task.id,
            )
            append_events(session, project_id=request.project_id, events=[event], at=now)

    def succeeded(self, request: TemplateRequest, task: TaskDefinition, result: TaskResult) -> None:
        now = datetime.now(UTC)
        with self._db.session(write_lock=True) as session:
            lock_project(session, project_id=request.project_id)
            run = get_run(session, project_id=request.project_id, number=request.run_number)
            if run is None:
                return
            update_task(
                session,
                run_id=run.id,
                key=task.id,
                only_from=("pending", "running"),
                status="succeeded",
                files=result.files,
                branch_name=result.branch,
                commit_sha=result.commit_sha,
                finished_at=now,
                error="",
            )
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
            append_events(session, project_id=request.project_id, events=events, at=now)
