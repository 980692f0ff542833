"""The gates a run may wait at: answers to its questions, then the review of its spec.
Each gate is left, and the leaving stored, as soon as an answer or decision is accepted
(the handlers in project_generation.py accept them; workflows/validation.py checks them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.failures import GenerationFailed
    from workflows.state import RunState
    from workflows.status import StatusWriter
    from workflows.status_writes import plan_created_payload
    from workflows.steps import EngineSteps
    from workflows.types import (
        DecisionRecord,
        Phase,
        PlanResult,
        ProjectGenerationInput,
        ProjectStatus,
        QuestionModel,
        SpecResult,
        TemplateRequest,
        with_defaults,
    )


class Gates:
    def __init__(
        self, input: ProjectGenerationInput, state: RunState, writer: StatusWriter, steps: EngineSteps
    ) -> None:
        self._input = input
        self._state = state
        self._writer = writer
        self._steps = steps

    async def run(self) -> tuple[TemplateRequest, SpecResult, PlanResult]:
        """The engine steps one by one, with the gates between them. Each gate is left, and
        the leaving stored, as soon as an answer or decision is accepted."""
        clarified = await self._steps.clarify()
        await self.ask(clarified.questions)
        request = self._steps.request(clarified.template_digest)
        spec = await self.review(lambda: self._steps.write_spec(request))
        return request, spec, await self.decompose(request)

    async def ask(self, questions: list[QuestionModel]) -> list[QuestionModel]:
        """The answers gate, when the run waits for answers and has questions; then every
        question nobody answered takes its default. The questions asked, for the spec."""
        inp, state, writer = self._input, self._state, self._writer
        state.questions = questions
        if state.questions and inp.waits_for_answers:
            asked = [q.model_dump(mode="json") for q in state.questions]
            await writer.transition(
                ProjectStatus.AWAITING_ANSWERS,
                Phase.AWAITING_ANSWERS,
                questions=state.questions,
                events=[writer.event("questions_asked", {"questions": asked})],
            )
            await workflow.wait_condition(lambda: state.answers_received)
            await writer.transition(ProjectStatus.GENERATING, Phase.SPEC, questions=[])
        state.answers = with_defaults(state.answers, state.questions)
        state.questions = []
        return questions

    async def decompose(self, request: TemplateRequest) -> PlanResult:
        """The plan the tasks run, on record as the run enters the tasks phase."""
        return await self.enter_tasks(await self._steps.decompose(request))

    async def enter_tasks(self, plan: PlanResult) -> PlanResult:
        writer = self._writer
        events = [writer.event("plan_created", plan_created_payload(plan))]
        await writer.transition(ProjectStatus.GENERATING, Phase.TASKS, plan=plan, events=events)
        return plan

    async def review(self, write: Callable[[], Awaitable[SpecResult]]) -> SpecResult:
        """Write a spec version, then, when the run waits for approval, the review gate:
        regenerate writes the next version (with every piece of feedback so far)."""
        inp, state, writer = self._input, self._state, self._writer
        while True:
            if state.phase != Phase.SPEC:
                writer.passing(Phase.SPEC)
            spec = await write()
            if not inp.waits_for_approval:
                writer.passing(Phase.DECOMPOSE)
                return spec
            await writer.transition(ProjectStatus.AWAITING_APPROVAL, Phase.AWAITING_APPROVAL)
            timeout = timedelta(seconds=inp.approval_timeout_seconds)
            try:
                await workflow.wait_condition(lambda: state.decision is not None, timeout=timeout)
            except TimeoutError:
                state.open_gate = None
                state.error = f"No approval was received within {human_duration(timeout)}."
                raise GenerationFailed(state.error) from None
            decision, state.decision = state.decision, None
            assert decision is not None
            payload = {"version": decision.version, "notes": decision.notes}
            if decision.kind == "reject":
                state.error = decision.notes or "The spec was rejected."
                state.pending.decision = DecisionRecord(version=decision.version, approved=False, notes=decision.notes)
                state.pending.events.append(writer.event("spec_rejected", payload))
                raise GenerationFailed(state.error)
            if decision.kind == "approve":
                state.pending.decision = DecisionRecord(version=decision.version, approved=True, notes=decision.notes)
                await writer.transition(
                    ProjectStatus.GENERATING, Phase.DECOMPOSE, events=[writer.event("spec_approved", payload)]
                )
                return spec
            requested = writer.event("regenerate_requested", {"version": decision.version, "feedback": decision.notes})
            await writer.transition(ProjectStatus.GENERATING, Phase.SPEC, events=[requested])


def human_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"
