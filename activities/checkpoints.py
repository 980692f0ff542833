"""A retry of a coding agents' run resumes from a checkpoint: the approved spec version's
documents and plan as they were (no model is asked again), and every task the retried run
finished, whose branch is still in the artifact store and whose definition is unchanged."""

from __future__ import annotations

from typing import Any, NamedTuple

from temporalio import activity

from activities.base import permanent
from activities.generation import GenerationActivities
from agents.plan_rules import to_plan_result
from agents.schemas import PlanOutput
from engine.gitpack import read_bundle
from store.db import Database
from store.lifecycle import get_run, list_spec_versions, list_tasks
from store.models import Project
from workflows.coding_types import RESTORE_CHECKPOINT, Checkpoint, CheckpointInput, CodingTaskResult, Workspace
from workflows.types import SpecResult, TaskResult


class _Finished(NamedTuple):
    """A task row of the retried run, read while its session is open."""

    key: str
    slug: str
    sequence: int
    status: str
    commit_sha: str | None
    branch: str | None
    files: list[str]
    definition: dict[str, Any]


class CheckpointActivities(GenerationActivities):
    _db: Database  # set by the subclass, which has one

    def _read(self, key: str) -> bytes:
        with self._artifacts.open(key) as stored:
            return stored.read()

    @activity.defn(name=RESTORE_CHECKPOINT)
    def restore_checkpoint(self, input: CheckpointInput) -> Checkpoint:
        """The approved spec version's documents, stored again for this run, its plan, and
        the tasks the retried run finished (their branches are still in the store)."""
        request = input.request
        with self._db.session() as session:
            versions = list_spec_versions(session, project_id=request.project_id)
            documents = next((dict(v.documents) for v in versions if v.version == input.spec_version), {})
            project = session.get(Project, request.project_id)
            slug = "" if project is None else project.slug
            previous = get_run(session, project_id=request.project_id, number=input.previous_run)
            finished = [
                _Finished(t.key, t.slug, t.sequence, t.status, t.commit_sha, t.branch_name, list(t.files), t.definition)
                for t in ([] if previous is None else list_tasks(session, run_id=previous.id))
            ]
        if not slug or "plan.json" not in documents:
            raise permanent(f"spec version {input.spec_version} holds no plan to resume from", "NothingToResume")
        prefix = f"{self._run_prefix(request)}/spec/v{input.spec_version}"
        digests = {
            name: self._artifacts.put_bytes(f"{prefix}/{name}", str(text).encode()).sha256
            for name, text in sorted(documents.items())
        }
        plan = to_plan_result(PlanOutput.model_validate_json(documents["plan.json"]), root_name=slug)
        spec = SpecResult(version=input.spec_version, documents_key=prefix, digests=digests)
        checkpoint = Checkpoint(spec=spec, plan=plan)
        old = f"projects/{request.project_id}/runs/{input.previous_run}"
        if self._artifacts.exists(f"{old}/base.bundle"):  # the scaffold the run's tasks started from
            base_key = f"{old}/base.bundle"
        elif input.base is not None:  # a run on top of the project: its tasks started from that history
            base_key = input.base.bundle_key
        else:
            return checkpoint  # the run never reached its tasks: nothing to keep
        refs, _objects = read_bundle(self._read(base_key))
        checkpoint.workspace = Workspace(base_key=base_key, base_commit=dict(refs)["refs/heads/main"].hex())
        planned = {t.id: t for t in plan.tasks}
        for task in finished:
            key = f"{old}/tasks/{task.sequence:03d}-{task.slug}.bundle"
            same = task.key in planned and planned[task.key].model_dump(mode="json") == task.definition
            if task.status != "succeeded" or not task.commit_sha or not same or not self._artifacts.exists(key):
                continue
            result = TaskResult(
                task_id=task.key,
                files=task.files,
                bundle_key=key,
                bundle_sha256="",
                branch=task.branch or f"feat/task-{task.sequence:03d}-{task.slug}",
                commit_sha=task.commit_sha,
            )
            checkpoint.done[task.key] = CodingTaskResult(result=result)
        return checkpoint
