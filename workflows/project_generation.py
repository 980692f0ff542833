"""ProjectGenerationWorkflow: one durable run per project generation."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, CancelledError, ChildWorkflowError, FailureError

with workflow.unsafe.imports_passed_through():
    from workflows.dag import DagFailed, run_dag, run_dag_packed
    from workflows.reporting import describe
    from workflows.review import ReviewHandlers
    from workflows.steps import ONE_PREPARATION_PATCH, EngineSteps, GenerationFailed
    from workflows.task_batch import (
        EVEN_PACKS_PATCH,
        PACK_MINIMUM_PATCH,
        TASK_FAILED,
        TASK_PACKS_PATCH,
        BatchRunner,
    )
    from workflows.types import (
        CLARIFY,
        DECOMPOSE,
        WRITE_SPEC,
        ArtifactRef,
        AssembleInput,
        ClarifyResult,
        DecisionRecord,
        EventRecord,
        Phase,
        PlanResult,
        ProjectGenerationInput,
        ProjectGenerationResult,
        ProjectionInput,
        ProjectStatus,
        QuestionModel,
        SpecInput,
        SpecRecord,
        SpecResult,
        TaskUpdate,
        TemplateRequest,
        VerifyResult,
        with_defaults,
    )
    from workflows.writes import export_completed_payload, plan_created_payload, project_ready_payload, spec_record

# Marks runs that run a large plan's tasks in child workflows (see workflows.task_batch).
TASK_BATCHES_PATCH = "task-batches"


@workflow.defn
class ProjectGenerationWorkflow(EngineSteps, ReviewHandlers, BatchRunner):
    @workflow.init
    def __init__(self, input: ProjectGenerationInput) -> None:
        self._input = input
        self._status = ProjectStatus.QUEUED
        self._phase = Phase.QUEUED
        # Status writes are numbered across runs, so a retry's writes always land after
        # everything the earlier run wrote.
        self._seq = (input.run_number - 1) * 1_000_000
        self._answers: dict[str, Any] = dict(input.answers)
        self._questions: list[QuestionModel] = []
        self._answers_received = False
        self._decision: str | None = None  # approve | reject | regenerate
        self._decision_notes = ""
        self._feedback: list[str] = list(input.feedback)
        self._spec_version = (input.approved_spec_version or input.first_spec_version) - 1
        self._tasks_total = 0
        self._tasks_done = 0
        self._error = ""
        self._paused = False
        self._failed_task: TaskUpdate | None = None
        # Events and spec records that ride along with the next status write: one
        # database round trip instead of two.
        self._pending_events: list[EventRecord] = []
        self._pending_spec: SpecRecord | None = None
        self._pending_decision: DecisionRecord | None = None
        self._events_made = 0
        self._webhooks: list[asyncio.Task[Any]] = []
        self._task_states: dict[str, str] = {}
        self._spec_key: str | None = None
        self._notified_status: ProjectStatus | None = None
        self._pending_started: datetime | None = None
        self._pending_verification: VerifyResult | None = None

    @workflow.run
    async def run(self, input: ProjectGenerationInput) -> ProjectGenerationResult:
        try:
            artifact = await self._generate()
        except (asyncio.CancelledError, CancelledError):
            # Cancellation is delivered once; the cleanup write below still runs.
            self._error = "Cancelled."
            await self._transition(
                ProjectStatus.CANCELLED,
                Phase.CANCELLED,
                finished=True,
                close_tasks="cancelled",
                events=[self._event("project_cancelled", {})],
            )
            raise
        except (GenerationFailed, FailureError) as exc:
            self._error = self._error or _describe(exc)
            await self._transition(
                ProjectStatus.FAILED,
                Phase.FAILED,
                finished=True,
                close_tasks="skipped",
                task_updates=[self._failed_task] if self._failed_task else [],
                events=[self._event("project_failed", {"error_message": self._error})],
            )
            await self._webhooks_sent()
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise ApplicationError(self._error, type="GenerationFailed", non_retryable=True) from exc
        if self._status != ProjectStatus.READY:  # else verify_and_export stored the ready write
            await self._transition(
                ProjectStatus.READY,
                Phase.DONE,
                finished=True,
                artifact=artifact,
                events=[self._event("project_ready", project_ready_payload(artifact))],
            )
        await self._webhooks_sent()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return ProjectGenerationResult(project_id=input.project_id, status=ProjectStatus.READY, artifact=artifact)

    async def _generate(self) -> ArtifactRef:
        inp = self._input
        await self._passing(Phase.CLARIFY, started=True)
        stored: ProjectionInput | None = None  # the tasks-phase write, if the preparation stored it
        if self._waits_for_nobody() and workflow.patched(ONE_PREPARATION_PATCH):
            request, spec, plan, stored = await self._prepare()
        else:
            request, spec, plan = await self._clarify_spec_and_decompose()
        self._tasks_total = len(plan.tasks)
        self._task_states = {t.id: "pending" for t in plan.tasks}
        if stored is not None:
            self._took(stored)
        else:
            await self._transition(
                ProjectStatus.GENERATING,
                Phase.TASKS,
                plan=plan,
                events=[self._event("plan_created", plan_created_payload(plan))],
            )
        try:
            if len(plan.tasks) > inp.tasks_per_batch and workflow.patched(TASK_BATCHES_PATCH):
                bundles, commits = await self._run_batches(request, plan.tasks)
            else:
                may_start = partial(_not_paused, self)
                if workflow.patched(TASK_PACKS_PATCH):
                    pack = partial(self._run_pack, request)
                    least = inp.min_tasks_per_pack if workflow.patched(PACK_MINIMUM_PATCH) else 1
                    even = workflow.patched(EVEN_PACKS_PATCH)
                    results = await run_dag_packed(
                        plan.tasks, inp.max_parallel_tasks, pack, may_start, min_pack=least, even=even
                    )
                else:
                    one = partial(self._run_task, request)
                    results = await run_dag(plan.tasks, inp.max_parallel_tasks, one, may_start)
                bundles = {k: v.bundle_key for k, v in results.items()}
                commits = {k: v.commit_sha for k, v in results.items()}
        except DagFailed as exc:
            raise self._task_failed(exc.task_id, _describe(exc.cause)) from exc
        except ChildWorkflowError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.type == TASK_FAILED and cause.details:
                failure = cause.details[0]
                raise self._task_failed(failure["task_id"], failure["error"]) from exc
            raise

        assemble = AssembleInput(request=request, plan=plan, bundles=bundles, commits=commits, spec=spec)
        exported = await self._verify_and_export(assemble)
        if self._status != ProjectStatus.READY:  # else verify_and_export stored the ready write
            self._append_pending(self._event("export_completed", export_completed_payload(exported)))
        return exported.artifact

    async def _clarify_spec_and_decompose(self) -> tuple[TemplateRequest, SpecResult, PlanResult]:
        """The engine steps one by one, with the gates between them."""
        inp = self._input
        clarified: ClarifyResult = await self._engine(CLARIFY, self._request(None), ClarifyResult, "clarify")
        self._questions = clarified.questions
        if self._questions and inp.waits_for_answers:
            asked = [q.model_dump(mode="json") for q in self._questions]
            await self._transition(
                ProjectStatus.AWAITING_ANSWERS,
                Phase.AWAITING_ANSWERS,
                questions=self._questions,
                events=[self._event("questions_asked", {"questions": asked})],
            )
            await workflow.wait_condition(lambda: self._answers_received)
        # Without gates, a question nobody answered takes the template's default.
        self._answers = with_defaults(self._answers, self._questions)
        self._questions = []
        request = self._request(clarified.template_digest)
        spec = await self._spec_and_approval(request)

        await self._passing(Phase.DECOMPOSE)
        plan: PlanResult = await self._engine(DECOMPOSE, request, PlanResult, "decompose")
        return request, spec, plan

    async def _spec_and_approval(self, request: TemplateRequest) -> SpecResult:
        inp = self._input
        while True:
            await self._passing(Phase.SPEC)
            self._spec_version += 1
            spec: SpecResult = await self._engine(
                WRITE_SPEC,
                SpecInput(request=request, version=self._spec_version, feedback=self._feedback),
                SpecResult,
                f"spec v{self._spec_version}",
            )
            self._spec_key = spec.documents_key
            record = spec_record(spec, request, list(self._feedback))
            created = self._event("spec_version_created", {"version": spec.version})
            if not inp.waits_for_approval:
                self._pending_spec = record
                self._append_pending(created)
                return spec
            await self._transition(
                ProjectStatus.AWAITING_APPROVAL, Phase.AWAITING_APPROVAL, spec=record, events=[created]
            )
            timeout = timedelta(seconds=inp.approval_timeout_seconds)
            try:
                await workflow.wait_condition(lambda: self._decision is not None, timeout=timeout)
            except TimeoutError:
                self._error = f"No approval was received within {_human(timeout)}."
                raise GenerationFailed(self._error) from None
            decision, notes = self._decision, self._decision_notes
            self._decision = None
            payload = {"version": spec.version, "notes": notes}
            if decision == "approve":
                self._pending_decision = DecisionRecord(version=spec.version, approved=True, notes=notes)
                self._append_pending(self._event("spec_approved", payload))
                return spec
            if decision == "reject":
                self._error = notes or "The spec was rejected."
                self._pending_decision = DecisionRecord(version=spec.version, approved=False, notes=notes)
                self._append_pending(self._event("spec_rejected", payload))
                raise GenerationFailed(self._error)
            self._append_pending(self._event("regenerate_requested", {"version": spec.version, "feedback": notes}))

    def _task_failed(self, task_id: str, error: str) -> GenerationFailed:
        self._error = f"Task {task_id} failed: {error}"
        self._failed_task = TaskUpdate(task_id=task_id, status="failed", error=error)
        return GenerationFailed(self._error)


def _not_paused(run: ProjectGenerationWorkflow) -> bool:
    return not run._paused


def _describe(exc: BaseException) -> str:
    return describe(exc, through=(GenerationFailed, DagFailed))


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"
