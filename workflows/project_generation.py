"""ProjectGenerationWorkflow: one durable run per project generation."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError

with workflow.unsafe.imports_passed_through():
    from workflows.dag import DagFailed, run_dag
    from workflows.types import (
        CLARIFY,
        DECOMPOSE,
        EXPORT,
        RECORD_PROJECTION,
        RUN_TASK,
        SA_PHASE,
        SA_STATUS,
        VERIFY,
        WRITE_SPEC,
        AnswersUpdate,
        ApprovalUpdate,
        ArtifactRef,
        AssembleInput,
        ClarifyResult,
        ExportResult,
        Phase,
        PlanResult,
        ProjectGenerationInput,
        ProjectGenerationResult,
        ProjectionInput,
        ProjectStatus,
        QuestionModel,
        RegenerateUpdate,
        SpecInput,
        SpecResult,
        StatusSnapshot,
        TaskDefinition,
        TaskInput,
        TaskResult,
        TemplateRequest,
        VerifyResult,
    )

# Engine steps are quick and deterministic; a few retries cover a worker dying.
ENGINE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5)
# Projection writes must land eventually, even across a long database outage.
PROJECTION_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30))
TASK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=20),
    maximum_attempts=5,
)


class GenerationFailed(Exception):
    pass


@workflow.defn
class ProjectGenerationWorkflow:
    @workflow.init
    def __init__(self, input: ProjectGenerationInput) -> None:
        self._input = input
        self._status = ProjectStatus.QUEUED
        self._phase = Phase.QUEUED
        self._seq = 0
        self._answers: dict[str, Any] = dict(input.answers)
        self._questions: list[QuestionModel] = []
        self._answers_received = False
        self._decision: str | None = None  # approve | reject | regenerate
        self._decision_notes = ""
        self._feedback: list[str] = []
        self._spec_version = 0
        self._tasks_total = 0
        self._tasks_done = 0
        self._error = ""

    @workflow.run
    async def run(self, input: ProjectGenerationInput) -> ProjectGenerationResult:
        result: ProjectGenerationResult
        try:
            artifact = await self._generate()
            await self._transition(ProjectStatus.READY, Phase.DONE, finished=True, artifact=artifact)
            result = ProjectGenerationResult(project_id=input.project_id, status=ProjectStatus.READY, artifact=artifact)
        except (asyncio.CancelledError, CancelledError):
            # Cancellation is delivered once; the cleanup write below still runs.
            self._error = "Cancelled."
            await self._transition(ProjectStatus.CANCELLED, Phase.CANCELLED, finished=True)
            raise
        except (GenerationFailed, FailureError) as exc:
            self._error = self._error or _describe(exc)
            await self._transition(ProjectStatus.FAILED, Phase.FAILED, finished=True)
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise ApplicationError(self._error, type="GenerationFailed", non_retryable=True) from exc
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def _generate(self) -> ArtifactRef:
        inp = self._input
        await self._transition(ProjectStatus.GENERATING, Phase.CLARIFY, started=True)
        clarified: ClarifyResult = await self._engine(CLARIFY, self._request(None), ClarifyResult, "clarify")
        self._questions = clarified.questions
        if self._questions and inp.wait_for_answers:
            await self._transition(ProjectStatus.AWAITING_ANSWERS, Phase.AWAITING_ANSWERS)
            await workflow.wait_condition(lambda: self._answers_received)
        # Without gates, a question nobody answered takes the template's default.
        for question in self._questions:
            self._answers.setdefault(question.id, question.default)
        self._questions = []
        request = self._request(clarified.template_digest)

        while True:
            await self._transition(ProjectStatus.GENERATING, Phase.SPEC)
            self._spec_version += 1
            spec: SpecResult = await self._engine(
                WRITE_SPEC,
                SpecInput(request=request, version=self._spec_version, feedback=self._feedback),
                SpecResult,
                f"spec v{self._spec_version}",
            )
            if not inp.require_approval:
                break
            await self._await_decision()
            if self._decision == "approve":
                break
            if self._decision == "reject":
                self._error = self._decision_notes or "The spec was rejected."
                raise GenerationFailed(self._error)
            self._decision = None  # regenerate: a new version goes back to review

        await self._transition(ProjectStatus.GENERATING, Phase.DECOMPOSE)
        plan: PlanResult = await self._engine(DECOMPOSE, request, PlanResult, "decompose")
        self._tasks_total = len(plan.tasks)

        await self._transition(ProjectStatus.GENERATING, Phase.TASKS)
        try:
            results = await run_dag(plan.tasks, inp.max_parallel_tasks, lambda t: self._run_task(request, t))
        except DagFailed as exc:
            self._error = f"Task {exc.task_id} failed: {_describe(exc.cause)}"
            raise GenerationFailed(self._error) from exc

        assemble = AssembleInput(
            request=request,
            plan=plan,
            bundles={k: v.bundle_key for k, v in results.items()},
            commits={k: v.commit_sha for k, v in results.items()},
            spec=spec,
        )
        await self._transition(ProjectStatus.GENERATING, Phase.VERIFY)
        verified: VerifyResult = await self._engine(VERIFY, assemble, VerifyResult, "verify")
        if not verified.ok:
            self._error = "Verification failed: " + "; ".join(verified.errors[:5])
            raise GenerationFailed(self._error)

        await self._transition(ProjectStatus.GENERATING, Phase.EXPORT)
        exported: ExportResult = await self._engine(EXPORT, assemble, ExportResult, "export")
        return exported.artifact

    async def _await_decision(self) -> None:
        await self._transition(ProjectStatus.AWAITING_APPROVAL, Phase.AWAITING_APPROVAL)
        timeout = timedelta(seconds=self._input.approval_timeout_seconds)
        try:
            await workflow.wait_condition(lambda: self._decision is not None, timeout=timeout)
        except TimeoutError:
            self._error = f"No approval was received within {_human(timeout)}."
            raise GenerationFailed(self._error) from None

    async def _run_task(self, request: TemplateRequest, task: TaskDefinition) -> TaskResult:
        label = f"task {task.sequence}/{self._tasks_total}: {task.slug}"
        result: TaskResult = await workflow.execute_activity(
            RUN_TASK,
            TaskInput(request=request, task=task, total_tasks=self._tasks_total),
            result_type=TaskResult,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(seconds=30),
            retry_policy=TASK_RETRY,
            summary=label,
        )
        self._tasks_done += 1
        workflow.set_current_details(self._details())
        return result

    async def _engine(self, name: str, arg: Any, result_type: type, summary: str) -> Any:
        return await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=ENGINE_RETRY,
            summary=summary,
        )

    def _request(self, digest: str | None) -> TemplateRequest:
        inp = self._input
        return TemplateRequest(
            project_id=inp.project_id,
            run_number=inp.run_number,
            template=inp.template,
            answers=dict(self._answers),
            template_digest=digest,
        )

    async def _transition(
        self,
        status: ProjectStatus,
        phase: Phase,
        *,
        started: bool = False,
        finished: bool = False,
        artifact: ArtifactRef | None = None,
    ) -> None:
        self._status, self._phase = status, phase
        self._seq += 1
        now = workflow.now()
        workflow.upsert_search_attributes([SA_STATUS.value_set(status.value), SA_PHASE.value_set(phase.value)])
        workflow.set_current_details(self._details())
        await workflow.execute_local_activity(
            RECORD_PROJECTION,
            ProjectionInput(
                project_id=self._input.project_id,
                seq=self._seq,
                status=status,
                phase=phase,
                at=now,
                error_message=self._error if status in (ProjectStatus.FAILED, ProjectStatus.CANCELLED) else None,
                started_at=now if started else None,
                finished_at=now if finished else None,
                artifact=artifact,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=PROJECTION_RETRY,
            summary=f"status {status.value} ({phase.value})",
        )

    def _details(self) -> str:
        inp = self._input
        lines = [
            f"**{inp.name}** (`{inp.slug}`), template `{inp.template}`, owner `{inp.owner}`",
            f"Status: **{self._status.value}**, phase: {self._phase.value}",
        ]
        if self._tasks_total:
            lines.append(f"Tasks: {self._tasks_done}/{self._tasks_total} done")
        if self._phase == Phase.AWAITING_APPROVAL:
            lines.append(f"Spec v{self._spec_version} awaits review: signal `approve`, `reject` or `regenerate`.")
        if self._error:
            lines.append(f"Error: {self._error}")
        return "\n\n".join(lines)

    # --- queries, updates and signals -------------------------------------------------

    @workflow.query
    def status(self) -> StatusSnapshot:
        return StatusSnapshot(
            project_id=self._input.project_id,
            status=self._status,
            phase=self._phase,
            spec_version=self._spec_version,
            tasks_total=self._tasks_total,
            tasks_done=self._tasks_done,
            questions=self._questions,
            error_message=self._error,
        )

    @workflow.update
    def approve(self, update: ApprovalUpdate) -> StatusSnapshot:
        self._decide("approve", update.notes)
        return self.status()

    @approve.validator
    def _validate_approve(self, update: ApprovalUpdate) -> None:
        self._require_phase(Phase.AWAITING_APPROVAL)

    @workflow.update
    def reject(self, update: ApprovalUpdate) -> StatusSnapshot:
        self._decide("reject", update.notes)
        return self.status()

    @reject.validator
    def _validate_reject(self, update: ApprovalUpdate) -> None:
        self._require_phase(Phase.AWAITING_APPROVAL)

    @workflow.update
    def regenerate(self, update: RegenerateUpdate) -> StatusSnapshot:
        self._feedback.append(update.feedback)
        self._decide("regenerate", update.feedback)
        return self.status()

    @regenerate.validator
    def _validate_regenerate(self, update: RegenerateUpdate) -> None:
        self._require_phase(Phase.AWAITING_APPROVAL)
        if not update.feedback.strip():
            raise ApplicationError("feedback must not be empty", type="InvalidInput")

    @workflow.update
    def answers(self, update: AnswersUpdate) -> StatusSnapshot:
        self._answers.update(update.answers)
        self._answers_received = True
        return self.status()

    @answers.validator
    def _validate_answers(self, update: AnswersUpdate) -> None:
        self._require_phase(Phase.AWAITING_ANSWERS)
        unknown = sorted(set(update.answers) - {q.id for q in self._questions})
        if unknown:
            raise ApplicationError(f"unknown question: {unknown[0]}", type="InvalidInput")

    @workflow.signal(name="approve")
    def approve_signal(self, update: ApprovalUpdate) -> None:
        self._signal("approve", self._validate_approve, self.approve, update)

    @workflow.signal(name="reject")
    def reject_signal(self, update: ApprovalUpdate) -> None:
        self._signal("reject", self._validate_reject, self.reject, update)

    def _signal(self, name: str, validate: Any, apply: Any, update: Any) -> None:
        # Scripts may signal instead of updating; the same validation applies, and an
        # invalid signal is logged and dropped rather than failing the workflow.
        try:
            validate(update)
        except ApplicationError as exc:
            workflow.logger.warning("ignored %s signal: %s", name, exc)
            return
        apply(update)

    def _decide(self, decision: str, notes: str) -> None:
        self._decision, self._decision_notes = decision, notes

    def _require_phase(self, phase: Phase) -> None:
        if self._phase != phase or self._decision is not None:
            raise ApplicationError(
                f"the project is {self._status.value} (phase {self._phase.value}), not {phase.value}",
                {"current_status": self._status.value, "phase": self._phase.value},
                type="InvalidState",
            )


def _describe(exc: BaseException) -> str:
    # Walk to the root cause: an ActivityError's own message says only "Activity task failed".
    while isinstance(exc, ActivityError | GenerationFailed | DagFailed) and exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, ApplicationError):
        return exc.message or exc.type or "ApplicationError"
    return str(exc) or type(exc).__name__


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"
