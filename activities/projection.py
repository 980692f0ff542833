"""The projection activity: the workflow's state, written to the database the API reads."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from store.db import Database
from store.projects import Projection, ProjectMissing, apply_projection
from workflows.types import RECORD_PROJECTION, ProjectionInput


class ProjectionActivities:
    def __init__(self, db: Database) -> None:
        self._db = db

    @activity.defn(name=RECORD_PROJECTION)
    def record_projection(self, input: ProjectionInput) -> bool:
        artifact = input.artifact
        projection = Projection(
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
        )
        try:
            with self._db.session() as session:
                return apply_projection(session, projection=projection)
        except ProjectMissing as exc:
            # The API removed the row because starting the workflow failed.
            raise ApplicationError(str(exc), type="ProjectMissing", non_retryable=True) from exc
