"""Clarify, spec, decompose and the task activities."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.base import RUNS_KEPT, Pulse, TemplateActivities, base_message, permanent, task_commit
from activities.task_records import PendingStart, TaskRecorder
from engine import EngineError
from engine.archive import zip_bytes
from engine.context import validate_answers
from engine.gitrepo import task_commit_sha
from engine.lru import LRU
from engine.outputs import template_files
from engine.plan import Ownership, Plan, decompose, matches, ownership
from engine.questions import questions_for
from engine.spec import render_spec
from engine.templates import Template
from workflows.status_writes import completed_tasks_write
from workflows.types import (
    CLARIFY,
    DECOMPOSE,
    PREPARE,
    RUN_TASK,
    RUN_TASKS,
    WRITE_SPEC,
    ClarifyResult,
    PlanResult,
    PrepareInput,
    PrepareResult,
    QuestionModel,
    SpecInput,
    SpecResult,
    TaskDefinition,
    TaskInput,
    TaskPackInput,
    TaskPackResult,
    TaskResult,
    TemplateRequest,
    with_defaults,
)

# How often a pack's finished tasks are written while it runs (seconds).
RECORD_EVERY = 0.25


class GenerationActivities(TemplateActivities):
    recorder: TaskRecorder | None = None  # set by the worker; tests may run without a database

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._memo: LRU[tuple[str, str, str], Any] = LRU(2 * RUNS_KEPT)  # a plan and an ownership a run

    @activity.defn(name=CLARIFY)
    def clarify(self, request: TemplateRequest) -> ClarifyResult:
        template = self._template(request)
        try:
            answers = validate_answers(template, request.answers)
            questions = questions_for(template, answers)
        except EngineError as exc:
            raise permanent(str(exc), "InvalidAnswer") from exc
        return ClarifyResult(
            template_digest=template.digest,
            questions=[QuestionModel(**q.__dict__) for q in questions],
        )

    @activity.defn(name=WRITE_SPEC)
    def write_spec(self, input: SpecInput) -> SpecResult:
        template = self._template(input.request)
        context = self._context(template, input.request)
        plan = self._plan(template, input.request, context)
        documents = render_spec(template, context, plan, version=input.version, feedback=input.feedback)
        prefix = f"{self._run_prefix(input.request)}/spec/v{input.version}"
        digests = {}
        for name, text in documents.items():
            digests[name] = self._artifacts.put_bytes(f"{prefix}/{name}", text.encode()).sha256
        return SpecResult(version=input.version, documents_key=prefix, digests=digests)

    @activity.defn(name=DECOMPOSE)
    def decompose(self, request: TemplateRequest) -> PlanResult:
        template = self._template(request)
        plan = self._plan(template, request, self._context(template, request))
        return PlanResult(
            root_name=plan.root_name,
            tasks=[TaskDefinition(**t.__dict__) for t in plan.tasks],
            merge_order=plan.merge_order,
        )

    @activity.defn(name=PREPARE)
    def prepare(self, input: PrepareInput) -> PrepareResult:
        """Clarify, spec and decompose of a run that waits for nobody: a question nobody
        answered takes the template's default, as the run would give it between the steps."""
        clarified = self.clarify(input.request)
        answers = with_defaults(input.request.answers, clarified.questions)
        request = input.request.model_copy(update={"answers": answers, "template_digest": clarified.template_digest})
        spec = self.write_spec(SpecInput(request=request, version=input.version, feedback=input.feedback))
        plan = self.decompose(request)
        recorded = None
        if input.record_last is not None:
            recorded = completed_tasks_write(input.record_last, request, spec, plan, input.feedback)
            self._store(recorded)
        return PrepareResult(request=request, clarified=clarified, spec=spec, plan=plan, recorded=recorded)

    @activity.defn(name=RUN_TASK)
    def run_task(self, input: TaskInput) -> TaskResult:
        pulse = Pulse()
        pulse(f"rendering {input.task.slug}")
        return self._recorded_task(input, pulse)

    @activity.defn(name=RUN_TASKS)
    def run_tasks(self, input: TaskPackInput) -> TaskPackResult:
        """Each task as ``run_task`` would run it. A failure names its task in the error's
        details; a retry runs the pack again, and the tasks it had finished give the same
        bytes, keys and commits again."""
        results: list[TaskResult] = []
        # Finished tasks go on record together: when the pack ends, before a failure, or
        # every RECORD_EVERY seconds, so a long pack still shows its progress.
        done: list[tuple[PendingStart, TaskResult]] = []
        recorded_at = time.monotonic()
        pulse = Pulse()
        try:
            for task in input.tasks:
                pulse(f"rendering {task.slug}")  # also where a cancellation arrives
                one = TaskInput(request=input.request, task=task, total_tasks=input.total_tasks)
                try:
                    result, start = self._attempt(one, pulse)
                except ApplicationError as exc:
                    raise ApplicationError(
                        exc.message, {"task_id": task.id}, type=exc.type, non_retryable=exc.non_retryable
                    ) from exc
                except Exception as exc:
                    raise ApplicationError(str(exc), {"task_id": task.id}, type=type(exc).__name__) from exc
                results.append(result)
                if start is not None:
                    start.settle()  # finished: its start waits to go on record with its result
                    done.append((start, result))
                if time.monotonic() - recorded_at >= RECORD_EVERY:
                    self._record(done)
                    recorded_at = time.monotonic()
        finally:
            self._record(done)
        return TaskPackResult(results=results)

    def _record(self, done: list[tuple[PendingStart, TaskResult]]) -> None:
        if self.recorder is not None and done:
            self.recorder.succeeded_many(done)
            done.clear()

    def _recorded_task(self, input: TaskInput, pulse: Pulse) -> TaskResult:
        result, start = self._attempt(input, pulse)
        if self.recorder is not None and start is not None:
            self.recorder.succeeded(start, result)
        return result

    def _attempt(self, input: TaskInput, pulse: Pulse) -> tuple[TaskResult, PendingStart | None]:
        """Run one task; a failed attempt is on record before the error goes on."""
        if self.recorder is None:
            return self._run_task(input, pulse), None
        start = self.recorder.begin(input.request, input.task, activity.info().attempt)
        try:
            return self._run_task(input, pulse), start
        except BaseException:
            self.recorder.failed_attempt(start)
            raise

    def _ownership(self, template: Template, request: TemplateRequest, context: dict[str, Any]) -> Ownership:
        """Many tasks of one run land on one worker: list the template and assign owners once
        per template and answers, not once per task (which is quadratic in the file count)."""
        owned: Ownership = self._memoised("ownership", template, request, lambda: ownership(template, context))
        return owned

    def _plan(self, template: Template, request: TemplateRequest, context: dict[str, Any]) -> Plan:
        """The spec and the decomposition of one run share one plan."""
        try:
            plan: Plan = self._memoised("plan", template, request, lambda: decompose(template, context))
        except EngineError as exc:
            raise permanent(str(exc), "InvalidPlan") from exc
        return plan

    def _memoised(self, kind: str, template: Template, request: TemplateRequest, compute: Callable[[], Any]) -> Any:
        # Pure functions of the template version and the answers: a few recent ones are kept.
        key = (kind, template.digest, json.dumps(request.answers, sort_keys=True, default=str))
        return self._memo.get_or_make(key, compute)

    def _run_task(self, input: TaskInput, pulse: Pulse) -> TaskResult:
        """Render the task's files, commit id and bundle, all in memory: the same answers
        give the same bytes, so a retry stores the same bundle under the same key."""
        task = input.task
        template = self._template(input.request)
        context = self._context(template, input.request)
        try:
            owned = self._ownership(template, input.request, context)
            files = template_files(template, context, owned.files_of(task.slug))
        except EngineError as exc:
            raise permanent(f"{task.slug}: {exc}", type(exc).__name__) from exc
        produced = sorted(files)
        outside = [p for p in produced if not matches(p, task.path_scope)]
        if outside:
            raise permanent(
                f"task {task.slug} wrote outside its path scope: {', '.join(outside[:5])}",
                "PathScopeViolation",
            )
        pulse(f"committing {len(produced)} files")
        commit = task_commit(task, files)
        try:
            sha = task_commit_sha(base_message=base_message(template), task=commit)
            # Only verify and export read a task's bundle: stored, not deflated.
            packed = zip_bytes(files, root_name="task", compress=False)  # no files: an empty ZIP
        except EngineError as exc:
            raise permanent(f"{task.slug}: {exc}", type(exc).__name__) from exc
        key = f"{self._run_prefix(input.request)}/tasks/{task.sequence:03d}-{task.slug}.zip"
        stored = self._artifacts.put_bytes(key, packed)
        return TaskResult(
            task_id=task.id,
            files=produced,
            bundle_key=key,
            bundle_sha256=stored.sha256,
            branch=commit.branch,
            commit_sha=sha,
        )
