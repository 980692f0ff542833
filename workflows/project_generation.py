"""ProjectGenerationWorkflow: one durable run per project generation.

clarify -> [answers] -> spec -> [approval] -> decompose -> tasks -> verify and export.
The run's state is one ``RunState``; every status write is built and stored through
``StatusWriter`` (workflows/status.py); the engine steps are in workflows/steps.py and
the tasks in workflows/tasks.py (a coding agent's in workflows/coding.py, then verify,
fix and the build's review in workflows/fixes.py). Clients steer it with the updates below (the API) or the
same operations as signals (scripts, the Web UI)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError, FailureError

with workflow.unsafe.imports_passed_through():
    from workflows.agent_gates import AgentGates
    from workflows.agent_types import BudgetUpdate
    from workflows.coding import CodingRunner
    from workflows.dag import DagFailed
    from workflows.failures import TASK_FAILED, GenerationFailed, cancels_the_run, describe
    from workflows.fixes import BuildFinish
    from workflows.gates import Gates
    from workflows.state import Decision, RunState
    from workflows.status import StatusWriter
    from workflows.steps import EngineSteps
    from workflows.tasks import TaskRunner
    from workflows.types import (
        AnswersUpdate,
        ApprovalUpdate,
        ArtifactRef,
        AssembleInput,
        PauseUpdate,
        Phase,
        ProjectGenerationInput,
        ProjectGenerationResult,
        ProjectStatus,
        QuestionModel,
        RegenerateUpdate,
        SpecSnapshot,
        StatusSnapshot,
        TaskUpdate,
    )
    from workflows.validation import check_answers, check_budget, check_pausable, check_resumable, check_review


@workflow.defn
class ProjectGenerationWorkflow:
    @workflow.init
    def __init__(self, input: ProjectGenerationInput) -> None:
        self._input = input
        self._state = RunState.starting(input)
        self._writer = StatusWriter(input, self._state)
        self._steps = EngineSteps(input, self._state, self._writer)
        self._tasks = TaskRunner(input, self._state, self._writer)
        self._gates = Gates(input, self._state, self._writer, self._steps)
        # Agent mode: a model asks, writes the spec and plans, through the same gates.
        self._agent = AgentGates(input, self._state, self._writer, self._steps, self._gates) if input.agent else None
        # Part 2: a coding agent builds the agent's plan, each task in its own work tree.
        coding = input.agent is not None and input.agent.coding_agent is not None
        self._coding = CodingRunner(input, self._state, self._writer) if coding else None
        # ...then verified, fixed by the same agent and reviewed (``review: "diff"``) before the export.
        self._finish = (
            BuildFinish(input, self._state, self._writer, self._steps, self._coding) if self._coding else None
        )
        # Pause and resume are stored as they are accepted, one at a time, in order.
        self._flag_lock = asyncio.Lock()

    @workflow.run
    async def run(self, input: ProjectGenerationInput) -> ProjectGenerationResult:
        state, writer = self._state, self._writer
        try:
            artifact = await self._generate()
        except (asyncio.CancelledError, GenerationFailed, FailureError) as exc:
            if cancels_the_run(exc):
                # Delivered once, in whichever form (cancels_the_run): the cleanup write
                # below still runs, and re-raised, the cancel closes the run CANCELED.
                state.error = "Cancelled."
                cancelled = writer.event("project_cancelled", {})
                await writer.transition(
                    ProjectStatus.CANCELLED, Phase.CANCELLED, finished=True, close_tasks="cancelled", events=[cancelled]
                )
                await self._wind_down()
                raise
            state.error = state.error or describe(exc, through=(GenerationFailed, DagFailed))
            await writer.transition(
                ProjectStatus.FAILED,
                Phase.FAILED,
                finished=True,
                close_tasks="skipped",
                task_updates=[state.failed_task] if state.failed_task else [],
                events=[writer.event("project_failed", {"error_message": state.error})],
            )
            await self._wind_down()
            raise ApplicationError(state.error, type="GenerationFailed", non_retryable=True) from exc
        await self._wind_down()
        return ProjectGenerationResult(project_id=input.project_id, status=ProjectStatus.READY, artifact=artifact)

    async def _wind_down(self) -> None:
        """However the run ends: its last status changes are delivered or handed on (their
        deliveries are activities of this run's, gone if it closes first), and every update
        accepted has its answer. Shielded: a cancel now comes after the end, which is stored,
        so it only hurries the deliveries on, and the run closes as it ended."""
        ending = asyncio.create_task(self._end())
        while True:
            try:
                await asyncio.shield(ending)
                return
            except asyncio.CancelledError:
                self._state.webhooks_hurried = True

    async def _end(self) -> None:
        await self._writer.webhooks_sent()
        await workflow.wait_condition(workflow.all_handlers_finished)

    async def _generate(self) -> ArtifactRef:
        state, writer = self._state, self._writer
        writer.passing(Phase.CLARIFY, started=True)
        if self._agent is not None and self._coding is not None and self._input.resume_from_run is not None:
            request, spec, plan, checkpoint = await self._agent.resume()
            self._coding.keep(checkpoint)
        elif self._agent is not None:
            request, spec, plan = await self._agent.run()
        elif self._input.waits_for_answers or self._input.waits_for_approval:
            request, spec, plan = await self._gates.run()
        else:  # nothing can hold this run up: clarify, spec and decompose back to back
            request, spec, plan = await self._steps.prepare()
        state.tasks_total = len(plan.tasks)
        state.task_states = {t.id: "pending" for t in plan.tasks}
        try:
            if self._coding is not None and self._finish is not None:
                workspace, bundles, commits = await self._coding.run(request, plan.tasks, spec)
                built = AssembleInput(
                    request=request,
                    plan=plan,
                    bundles=bundles,
                    commits=commits,
                    spec=spec,
                    base=self._input.base,
                    coding_base_key=workspace.base_key,
                )
                return (await self._finish.run(built)).artifact  # fix tasks may fail: DagFailed
            bundles, commits = await self._tasks.run(request, plan.tasks)
        except DagFailed as exc:
            raise self._task_failed(exc.task_id, describe(exc.cause)) from exc
        except ChildWorkflowError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.type == TASK_FAILED and cause.details:
                failure = cause.details[0]
                raise self._task_failed(failure["task_id"], failure["error"]) from exc
            raise
        assemble = AssembleInput(
            request=request, plan=plan, bundles=bundles, commits=commits, spec=spec, base=self._input.base
        )
        exported = await self._steps.verify_and_export(assemble)
        return exported.artifact

    def _task_failed(self, task_id: str, error: str) -> GenerationFailed:
        self._state.error = f"Task {task_id} failed: {error}"
        self._state.failed_task = TaskUpdate(task_id=task_id, status="failed", error=error)
        return GenerationFailed(self._state.error)

    # --- queries -------------------------------------------------------------------------

    @workflow.query
    def status(self) -> StatusSnapshot:
        state = self._state
        return StatusSnapshot(
            project_id=self._input.project_id,
            status=state.status,
            phase=state.phase,
            spec_version=state.spec_version,
            tasks_total=state.tasks_total,
            tasks_done=state.tasks_done,
            questions=state.questions if state.open_gate == Phase.AWAITING_ANSWERS else [],
            error_message=state.error,
            paused=state.paused,
        )

    @workflow.query
    def questions(self) -> list[QuestionModel]:
        return self._state.questions

    @workflow.query
    def spec(self) -> SpecSnapshot:
        state = self._state
        return SpecSnapshot(
            version=state.spec_version,
            documents_key=state.spec_key,
            feedback=list(state.feedback),
            awaiting_review=state.open_gate == Phase.AWAITING_APPROVAL,
        )

    @workflow.query
    def tasks(self) -> dict[str, str]:
        """Task id -> pending, running, succeeded, failed or cancelled, as this run sees them."""
        return dict(self._state.task_states)

    # --- decisions and answers: accepted once, and answered with the state they lead to -----

    async def _settled(self, accept: Callable[[], None]) -> StatusSnapshot:
        """Accept, then wait for the run to store the state the acceptance leads to, so
        the caller is answered with where the run went, never where it was."""
        stored = self._state.stored
        accept()
        await workflow.wait_condition(lambda: self._state.stored > stored)
        return self.status()

    def _decide(self, kind: str, notes: str) -> None:
        state = self._state
        # At the build's review a decision names its round, and feedback goes to a fix task, not the spec.
        build = state.open_gate == Phase.AWAITING_REVIEW
        state.open_gate = None  # from now on no other decision is accepted for this version
        if kind == "regenerate" and not build:
            state.feedback.append(notes)
        version = state.review_round if build else state.spec_version
        state.decision = Decision(kind=kind, notes=notes, version=version)  # type: ignore[arg-type]

    def _answer(self, answers: dict[str, Any]) -> None:
        state = self._state
        state.open_gate = None
        state.answers.update(answers)
        state.answers_received = True

    @workflow.update
    async def approve(self, update: ApprovalUpdate) -> StatusSnapshot:
        return await self._settled(lambda: self._decide("approve", update.notes))

    @approve.validator
    def _validate_approve(self, update: ApprovalUpdate) -> None:
        check_review(self._state, update.version)

    @workflow.update
    async def reject(self, update: ApprovalUpdate) -> StatusSnapshot:
        return await self._settled(lambda: self._decide("reject", update.notes))

    @reject.validator
    def _validate_reject(self, update: ApprovalUpdate) -> None:
        check_review(self._state, update.version)

    @workflow.update
    async def regenerate(self, update: RegenerateUpdate) -> StatusSnapshot:
        return await self._settled(lambda: self._decide("regenerate", update.feedback.strip()))

    @regenerate.validator
    def _validate_regenerate(self, update: RegenerateUpdate) -> None:
        check_review(self._state, update.version)
        if not update.feedback.strip():
            raise ApplicationError("feedback must not be empty", {"field": "feedback"}, type="InvalidInput")

    @workflow.update
    async def answers(self, update: AnswersUpdate) -> StatusSnapshot:
        return await self._settled(lambda: self._answer(update.answers))

    @answers.validator
    def _validate_answers(self, update: AnswersUpdate) -> None:
        check_answers(self._state, update.answers)

    # --- agent mode: a new model budget, taken at once; a run stopped by the old one goes on ---

    def _raise_budget(self, update: BudgetUpdate) -> None:
        state = self._state
        state.budget = update.budget
        if state.open_gate == Phase.AWAITING_BUDGET:
            state.open_gate = None
            state.budget_raised = True

    @workflow.update
    async def raise_budget(self, update: BudgetUpdate) -> StatusSnapshot:
        if self._state.open_gate == Phase.AWAITING_BUDGET:
            return await self._settled(lambda: self._raise_budget(update))
        self._raise_budget(update)  # for the phases still to come
        return self.status()

    @raise_budget.validator
    def _validate_raise_budget(self, update: BudgetUpdate) -> None:
        check_budget(self._state, update.budget)

    # --- pause and resume: a state of their own, on record as they are accepted --------------

    async def _set_paused(self, paused: bool, reason: str) -> StatusSnapshot:
        self._state.paused = paused
        async with self._flag_lock:
            event = self._writer.event("project_paused" if paused else "project_resumed", {"reason": reason})
            await self._writer.record_flags(events=[event])
        return self.status()

    async def _signalled_pause(self, paused: bool, update: PauseUpdate) -> None:
        check = check_pausable if paused else check_resumable
        try:
            check(self._state)
        except ApplicationError as exc:
            workflow.logger.warning("ignored %s signal: %s", "pause" if paused else "resume", exc)
            return
        await self._set_paused(paused, update.reason)

    @workflow.update
    async def pause(self, update: PauseUpdate) -> StatusSnapshot:
        return await self._set_paused(True, update.reason)

    @pause.validator
    def _validate_pause(self, update: PauseUpdate) -> None:
        check_pausable(self._state)

    @workflow.update
    async def resume(self, update: PauseUpdate) -> StatusSnapshot:
        return await self._set_paused(False, update.reason)

    @resume.validator
    def _validate_resume(self, update: PauseUpdate) -> None:
        check_resumable(self._state)

    # --- the same as signals, for scripts: validated alike, logged and dropped when invalid ---

    def _signal(self, name: str, validate: Callable[[Any], None], apply: Callable[[], Any], arg: Any) -> None:
        try:
            validate(arg)
        except ApplicationError as exc:
            workflow.logger.warning("ignored %s signal: %s", name, exc)
            return
        apply()

    @workflow.signal(name="approve")
    def approve_signal(self, update: ApprovalUpdate) -> None:
        self._signal("approve", self._validate_approve, lambda: self._decide("approve", update.notes), update)

    @workflow.signal(name="reject")
    def reject_signal(self, update: ApprovalUpdate) -> None:
        self._signal("reject", self._validate_reject, lambda: self._decide("reject", update.notes), update)

    @workflow.signal(name="regenerate")
    def regenerate_signal(self, update: RegenerateUpdate) -> None:
        feedback = update.feedback.strip()
        self._signal("regenerate", self._validate_regenerate, lambda: self._decide("regenerate", feedback), update)

    @workflow.signal(name="raise_budget")
    def raise_budget_signal(self, update: BudgetUpdate) -> None:
        self._signal("raise_budget", self._validate_raise_budget, lambda: self._raise_budget(update), update)

    @workflow.signal(name="answers")
    def answers_signal(self, update: AnswersUpdate) -> None:
        self._signal("answers", self._validate_answers, lambda: self._answer(update.answers), update)

    # Async, so that the run waits for their writes (all_handlers_finished) before it ends.
    @workflow.signal(name="pause")
    async def pause_signal(self, update: PauseUpdate) -> None:
        await self._signalled_pause(True, update)

    @workflow.signal(name="resume")
    async def resume_signal(self, update: PauseUpdate) -> None:
        await self._signalled_pause(False, update)
