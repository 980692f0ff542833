"""The projection activity: the workflow's state, written to the database the API reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.task_records import until_stored
from store.artifacts import ArtifactStore
from store.db import Database
from store.lifecycle import (
    NewEvent,
    append_events,
    close_open_tasks,
    decide_spec,
    ensure_run,
    ensure_tasks,
    record_spec_version,
    update_tasks,
)
from store.projects import Projection, ProjectMissing, apply_projection, set_paused
from workflows.types import RECORD_PROJECTION, ProjectionInput, TaskUpdate


class ProjectionActivities:
    def __init__(self, db: Database, artifacts: ArtifactStore) -> None:
        self._db = db
        self._artifacts = artifacts

    @activity.defn(name=RECORD_PROJECTION)
    def record_projection(self, input: ProjectionInput) -> bool:
        return self._write([input])[0]

    def store(self, *writes: ProjectionInput) -> None:
        """Writes a run handed over with another activity's input, stored in order in one
        transaction, as the run's own writes are; a database that is not there is waited for."""

        def write_them() -> None:
            self._write(list(writes))

        until_stored(write_them)

    def _write(self, writes: list[ProjectionInput]) -> list[bool]:
        documents = [self._spec_documents(write) for write in writes]
        try:
            # The write lock: event numbers are handed out under it (see append_events).
            with self._db.session(write_lock=True) as session:
                return [self._apply(session, w, d) for w, d in zip(writes, documents, strict=True)]
        except ProjectMissing as exc:
            # The API removed the row because starting the workflow failed.
            raise ApplicationError(str(exc), type="ProjectMissing", non_retryable=True) from exc

    def _spec_documents(self, input: ProjectionInput) -> dict[str, str]:
        if input.spec is None:
            return {}
        names = ("SPEC.md", "ACCEPTANCE.md", "ROUTES.md", "DATA.md", *input.spec.extra_documents)
        documents = {}
        for name in names:
            with self._artifacts.open(f"{input.spec.documents_key}/{name}") as fh:
                documents[name] = fh.read().decode("utf-8")
        return documents

    def _apply(self, session: Session, input: ProjectionInput, documents: dict[str, str]) -> bool:
        if input.flags_only:
            if input.paused is not None:
                set_paused(session, project_id=input.project_id, paused=input.paused, at=input.at)
            self._append(session, input)
            return False
        artifact = input.artifact
        changed = apply_projection(
            session,
            projection=Projection(
                project_id=input.project_id,
                seq=input.seq,
                status=input.status.value,
                phase=input.phase.value,
                at=input.at,
                error_message=input.error_message,
                started_at=input.started_at,
                finished_at=input.finished_at,
                artifact_key=artifact.key if artifact else None,
                artifact_sha256=artifact.sha256 if artifact else None,
                artifact_size=artifact.size if artifact else None,
                run_number=input.run_number,
                keeps_artifact=input.keeps_artifact,
                questions=[q.model_dump(mode="json") for q in input.questions] if input.questions is not None else None,
            ),
        )
        run = ensure_run(
            session, project_id=input.project_id, number=input.run_number, trigger=input.trigger, at=input.at
        )
        if changed:
            run.status, run.updated_at = input.status.value, input.at
            run.started_at = run.started_at or input.started_at
            run.finished_at = input.finished_at or run.finished_at
            if input.error_message is not None:
                run.error_message = input.error_message
        if input.spec is not None:
            record_spec_version(
                session,
                project_id=input.project_id,
                version=input.spec.version,
                documents=documents,
                answers=input.spec.answers,
                feedback=input.spec.feedback,
                at=input.at,
            )
            run.spec_version = input.spec.version
        if input.decision is not None:
            decide_spec(
                session,
                project_id=input.project_id,
                version=input.decision.version,
                approved_at=input.at if input.decision.approved else None,
                notes=input.decision.notes,
            )
        if input.plan is not None:
            run.dag = {
                "nodes": [t.model_dump(mode="json") for t in input.plan.tasks],
                "edges": [{"from": d, "to": t.id} for t in input.plan.tasks for d in t.dependencies],
                "merge_order": input.plan.merge_order,
            }
            ensure_tasks(session, run=run, project_id=input.project_id, definitions=run.dag["nodes"])
        if input.verification is not None:
            run.verification = input.verification.model_dump(mode="json")
        if input.commits is not None:
            run.bundle_key = input.commits.bundle_key
            run.head_commit, run.base_commit = input.commits.head, input.commits.base
        if input.task_updates:
            changes = [(c.task_id, _task_changes(c, input.at)) for c in input.task_updates]
            update_tasks(session, run_id=run.id, changes=changes)
        if input.close_tasks is not None:
            close_open_tasks(session, run_id=run.id, status=input.close_tasks, at=input.at)
        self._append(session, input)
        return changed

    @staticmethod
    def _append(session: Session, input: ProjectionInput) -> None:
        append_events(
            session,
            project_id=input.project_id,
            events=[NewEvent(type=e.type, key=e.key, payload=e.payload, task_id=e.task_id) for e in input.events],
            at=input.at,
        )


def _task_changes(update: TaskUpdate, at: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {"status": update.status, "error": update.error, "finished_at": at}
    if update.commit_sha is not None:  # a task kept from the run before
        values.update(commit_sha=update.commit_sha, branch_name=update.branch, files=update.files or [])
    return values
