"""Agent mode's way to the tasks: a model asks the questions, writes the spec and plans the
work, each phase run here, in the project's workflow (agents/workflow.py, ``PhaseRun``,
says why not as a child workflow), its model requests activities of their own, so a crash
never repeats a completed request. The gates are the template path's (workflows/gates.py):
answers, then one review of the spec and plan together.

Each request is checked against the budget in force when it is sent, so a budget raised
while a phase runs reaches that phase's next request. A budget that runs out stops the run
at ``awaiting_budget``, everything before the phase kept, until the ``raise_budget`` update
raises it (or the run is cancelled); the phase then runs again from its start. Until
coding agents build the plan (part 2), the tasks are the template's modules and the
agent's plan is reviewed and kept as documents (tasks.md).

A run on demand (``input.change``, ``POST /projects/{id}/runs``) goes the same way with the
client's change request: the phases see it, as data, beside the spec the last ready run was
built from, so the spec written is that spec's next version and the plan holds only the new
tasks, which the coding agent builds on the project's last main."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agents.budget import budget_exceeded
    from agents.types import AgentPhase, AgentPhaseInput, AgentPhaseResult, ProjectBrief, Spend, StoredOutput
    from workflows.agent_types import AgentBudget, AgentMode
    from workflows.coding_types import RESTORE_CHECKPOINT, Checkpoint, CheckpointInput
    from workflows.failures import GenerationFailed
    from workflows.gates import Gates
    from workflows.state import RunState
    from workflows.status import StatusWriter
    from workflows.status_writes import spec_record
    from workflows.steps import ENGINE_RETRY, OUTAGE_PATIENCE, EngineSteps
    from workflows.types import (
        Phase,
        PlanResult,
        ProjectGenerationInput,
        ProjectStatus,
        QuestionModel,
        SpecResult,
        TemplateRequest,
    )

# Where a stopped phase resumes, as the status shows it.
RESUMES_IN = {AgentPhase.CLARIFY: Phase.CLARIFY, AgentPhase.SPEC: Phase.SPEC, AgentPhase.PLAN: Phase.SPEC}


class AgentGates:
    def __init__(
        self, input: ProjectGenerationInput, state: RunState, writer: StatusWriter, steps: EngineSteps, gates: Gates
    ) -> None:
        assert input.agent is not None
        self._input = input
        self._agent: AgentMode = input.agent
        self._state = state
        self._writer = writer
        self._steps = steps
        self._gates = gates
        self._plan: PlanResult | None = None  # the agent's plan of the latest spec version
        self._phase_runs = 0  # phases run so far, again after a stop included: each records under its own key

    async def run(self) -> tuple[TemplateRequest, SpecResult, PlanResult]:
        # The template's own questions pin its version and say which answers are its variables.
        template = await self._steps.clarify()
        variables = {q.id for q in template.questions} | set(self._input.answers)
        change = self._input.change
        if change is None:
            clarified = await self._phase(AgentPhase.CLARIFY)
            asked = await self._gates.ask(_merged(clarified.questions or [], template.questions))
        else:
            # A run on demand asks only the model's questions about the change (often none):
            # the template's were answered when the project was made, and those answers stand.
            clarified = await self._phase(AgentPhase.CLARIFY, answers=dict(self._input.answers))
            asked = await self._gates.ask(clarified.questions or [])
        request = self._steps.request(template.template_digest)
        # Only the template's variables reach rendering; the model's own questions reach the spec.
        # A change keeps the project's answers as they are, whatever its questions were called.
        answers = request.answers if change is None else self._input.answers
        request.answers = {k: v for k, v in answers.items() if k in variables}
        spec = await self._gates.review(lambda: self._spec_and_plan(request, asked))
        if self._agent.coding_agent is not None and self._plan is not None:
            # Part 2: coding agents build the approved plan itself, on the template's files
            # (a change: on the project's last main, which ``base`` names).
            return request, spec, await self._gates.enter_tasks(self._plan)
        if change is not None:  # the API starts none without a coding agent; a plan alone builds nothing
            raise GenerationFailed("a change is built by a coding agent, and this project has none")
        return request, spec, await self._gates.decompose(request)

    async def resume(self) -> tuple[TemplateRequest, SpecResult, PlanResult, Checkpoint]:
        """A retry of a coding agents' run: no model is asked again. The approved spec and
        plan are the run's as they were, and the tasks it finished are kept (their commits)."""
        inp, state = self._input, self._state
        assert inp.resume_from_run is not None and inp.approved_spec_version is not None
        template = await self._steps.clarify()  # pins the template's version, as any run does
        request = self._steps.request(template.template_digest)
        checkpoint: Checkpoint = await workflow.execute_activity(
            RESTORE_CHECKPOINT,
            CheckpointInput(
                request=request,
                previous_run=inp.resume_from_run,
                spec_version=inp.approved_spec_version,
                base=inp.base,
            ),
            result_type=Checkpoint,
            start_to_close_timeout=timedelta(minutes=5),
            schedule_to_close_timeout=OUTAGE_PATIENCE,
            retry_policy=ENGINE_RETRY,
            summary=f"resume run {inp.resume_from_run}: spec v{inp.approved_spec_version} and its finished tasks",
        )
        state.spec_version, state.spec_key = checkpoint.spec.version, checkpoint.spec.documents_key
        return request, checkpoint.spec, await self._gates.enter_tasks(checkpoint.plan), checkpoint

    async def _spec_and_plan(self, request: TemplateRequest, asked: list[QuestionModel]) -> SpecResult:
        """The next spec version and the plan made from it, on record together."""
        state, writer = self._state, self._writer
        state.spec_version += 1
        version, feedback = state.spec_version, list(state.feedback)
        written = await self._phase(
            AgentPhase.SPEC, version=version, feedback=feedback, questions=asked, answers=dict(state.answers)
        )
        assert written.spec is not None
        state.spec_key = written.spec.documents_key
        planned = await self._phase(
            AgentPhase.PLAN, version=version, feedback=feedback, answers=dict(state.answers), spec_key=state.spec_key
        )
        assert planned.plan is not None and planned.spec is not None
        self._plan = planned.plan  # the version under review: the one approval covers
        # One version: the four documents and the plan's, under one key, reviewed and exported together.
        spec = written.spec.model_copy(update={"digests": {**written.spec.digests, **planned.spec.digests}})
        record = spec_record(spec, request, feedback)
        state.pending.spec = record.model_copy(update={"extra_documents": list(planned.spec.digests)})
        state.pending.events += [
            writer.event("spec_version_created", {"version": version}),
            writer.event("plan_proposed", {"version": version, "tasks": len(planned.plan.tasks)}),
        ]
        return spec

    async def _phase(self, phase: AgentPhase, **fields: Any) -> StoredOutput:
        """One phase; while the budget has run out, wait for a new one, then run it again."""
        inp, state = self._input, self._state
        brief = ProjectBrief(name=inp.name, slug=inp.slug, description=self._agent.brief)
        while True:
            assert state.budget is not None
            phase_input = AgentPhaseInput(
                project_id=inp.project_id,
                run_number=inp.run_number,
                phase=phase,
                template=inp.template,
                brief=brief,
                budget=state.budget,
                change=inp.change,  # a run on demand: every phase writes the change's delta
                **fields,
            )
            result = await self._run(phase_input)
            state.spent = result.spent
            self._writer.show()
            if result.status == "completed" and result.output is not None:
                return result.output
            # Stopped by the budget: the gate, unless the budget in force now covers what
            # was spent (a raise handled after the phase's last check, in the same workflow
            # task); then the phase runs again at once, with no stop at the gate.
            if not self._covers(result.spent):
                await self._wait_for_budget(phase, result)

    async def _run(self, phase_input: AgentPhaseInput) -> AgentPhaseResult:
        """The phase, here: each request checked against the run's budget as it is then."""
        with workflow.unsafe.imports_passed_through():
            # Pydantic AI, imported only by a run that reaches a phase (on a worker with a
            # provider, which has imported it already).
            from agents.workflow import PhaseRun

        info = workflow.info()
        self._phase_runs += 1
        key = f"{info.workflow_id}/{info.run_id}/{self._phase_runs}-{phase_input.phase.value}"
        return await PhaseRun(phase_input, key=key, budget=self._budget).run()

    def _budget(self) -> AgentBudget:
        """The run's budget as it is now (``raise_budget`` replaces it)."""
        assert self._state.budget is not None
        return self._state.budget

    def _covers(self, spent: Spend) -> bool:
        return budget_exceeded(self._budget(), spent) is None

    async def _wait_for_budget(self, phase: AgentPhase, result: AgentPhaseResult) -> None:
        state, writer = self._state, self._writer
        exceeded = result.budget_exceeded
        assert exceeded is not None
        stopped = writer.event(
            "budget_exceeded",
            {
                "phase": phase.value,
                "limits": exceeded.limits,
                "message": exceeded.message,
                "spent": result.spent.model_dump(mode="json"),
            },
        )
        state.error = exceeded.message  # shown while the run waits; cleared when it goes on
        await writer.transition(ProjectStatus.AWAITING_BUDGET, Phase.AWAITING_BUDGET, events=[stopped])
        # The budget in force, not a flag alone: a raise accepted while this write was on its
        # way (before the gate opened) lets the run go on too.
        await workflow.wait_condition(lambda: state.budget_raised or self._covers(state.spent))
        state.budget_raised, state.error = False, ""
        assert state.budget is not None
        raised = writer.event("budget_raised", {"budget": state.budget.model_dump(mode="json")})
        await writer.transition(ProjectStatus.GENERATING, RESUMES_IN[phase], events=[raised])


def _merged(asked: list[QuestionModel], template: list[QuestionModel]) -> list[QuestionModel]:
    """The model's questions; one that sets a template variable takes the template's rules
    (type, options, default), so an answer the template would refuse is refused at the gate."""
    rules = {q.id: q for q in template}
    return [rules[q.id].model_copy(update={"question": q.question}) if q.id in rules else q for q in asked]
