"""One phase of agent mode (clarify, spec or plan): ``PhaseRun``, run by the project's own
workflow (workflows/agent_gates.py), and ``AgentPhaseWorkflow``, the same phase as a
workflow of its own (tests, and a phase run alone).

prepare (prompt and spend so far) -> the agent's run, one model request at a time:
budget check before each request, usage recorded after each -> store the output.

How each request is observed. The run is driven with ``agent.iter()``: the workflow sees
every node, so before each model request (a ``ModelRequestNode``) it checks the budget on
what is on record and can simply stop there, and each response (the next
``CallToolsNode`` carries it) has its usage recorded, through an idempotent activity that
also emits ``agent_request_completed``, before anything else is sent: just before the
next request's budget check, or, for the response that gives the output, by the step that
stores the output (one step a phase fewer), or before the phase fails. The alternatives lose
something: ``UsageLimits`` (``total_tokens_limit``, ``cost_limit``) raise from inside the
run, so the run's messages and per-request usage are gone with it, and a request it cannot
price only draws a warning, never a stop; capability hooks (``before_model_request`` /
``after_model_request``) must be attached when the agent is built, so they would reach
per-run state only through ``deps``, which are serialised into every model activity, and
stopping would again mean raising. Every completed request is on record before the next
is sent, also when the phase then stops or fails.

What it costs beyond the model. Each model request is an activity of Pydantic AI's Temporal
integration, so a crash never repeats a completed one. Everything else is kept off the
server's round trips: the phase runs in the project's workflow rather than as a child
workflow (a child's start, its first workflow task in a sandbox of its own and its result
reaching the parent cost ~30 ms a phase), and its own steps, prepare, record and store, are
local activities (~15 ms a step as ordinary ones). bench/agent.py measures the sum.

On replay nothing is sent again: each request is an activity whose recorded response is
reused, and so is each step's result."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic_ai import Agent
    from pydantic_ai.exceptions import AgentRunError, ModelAPIError, UnexpectedModelBehavior, UserError

    from agents.budget import budget_exceeded
    from agents.feedback import Problems
    from agents.phases import installed
    from agents.types import (
        AGENT_PHASE_WORKFLOW,
        PREPARE_AGENT_PHASE,
        RECORD_AGENT_REQUEST,
        STORE_AGENT_OUTPUT,
        AgentBudget,
        AgentPhase,
        AgentPhaseInput,
        AgentPhaseResult,
        BudgetExceeded,
        PhaseStart,
        RecordedRequest,
        RecordRequestInput,
        RequestUsage,
        Spend,
        StoredPhaseOutput,
        StoreOutputInput,
        response_usage,
    )

# The phase's own steps are quick (a prompt, a row, a few files) and idempotent (prepare
# only reads, a recording is keyed by its request, the output goes to fixed keys), so they
# are local activities: this worker runs them within the workflow task, with no server
# round trip before or after. A step that outlives its attempt is retried like any other
# activity; a few retries cover a worker dying or the database blinking.
STEP_TIMEOUT = timedelta(seconds=30)
STEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5)
OUTPUT_FIELDS = {AgentPhase.CLARIFY: "questions", AgentPhase.SPEC: "spec", AgentPhase.PLAN: "plan"}


class PhaseRun:
    """One run of a phase, in the workflow that awaits it.

    ``key`` is this run's own: its requests are recorded under it, so no other run of a
    phase, in this workflow or another, records under the same keys. ``budget`` gives the
    budget in force now (the project's, which ``raise_budget`` may change while the phase
    runs); each request is checked against it just before it is sent."""

    def __init__(self, input: AgentPhaseInput, key: str, budget: Callable[[], AgentBudget] | None = None) -> None:
        self._input = input
        self._key = key
        self._budget = budget or (lambda: input.budget)
        self._requests: list[RequestUsage] = []  # every completed request, as recorded
        self._spent = Spend()  # the project's, with this phase's requests so far
        self._unrecorded: Any = None  # the last response, until its usage is on record

    async def run(self) -> AgentPhaseResult:
        input = self._input
        phase = input.phase.value
        # The prompt carries the client's text as data; the spend is everything on record.
        start: PhaseStart = await _step(PREPARE_AGENT_PHASE, input, PhaseStart, f"prepare {phase}")
        self._spent = start.spent

        output, stopped = await self._converse(start.prompt)
        if stopped is not None:
            return AgentPhaseResult(
                status="budget_exceeded",
                phase=input.phase,
                budget_exceeded=stopped,
                requests=self._requests,
                spent=self._spent,
            )

        # The output, stored where the template path stores its own, with what produced it;
        # the request that gave it goes on record in the same step.
        requests = list(self._requests)
        reproducibility = start.reproducibility.model_copy(
            update={"requests": requests, "models_answering": sorted({r.model for r in requests})}
        )
        last, self._unrecorded = self._unrecorded, None
        store = StoreOutputInput(
            request=input,
            reproducibility=reproducibility,
            last_request=self._usage_of(last) if last is not None else None,
            **{OUTPUT_FIELDS[input.phase]: output},
        )
        stored: StoredPhaseOutput = await _step(STORE_AGENT_OUTPUT, store, StoredPhaseOutput, f"store {phase}")
        if stored.last_request is not None:
            self._took(stored.last_request)
        return AgentPhaseResult(
            status="completed", phase=input.phase, output=stored.output, requests=self._requests, spent=self._spent
        )

    async def _converse(self, prompt: str) -> tuple[Any, BudgetExceeded | None]:
        """The agent's run, one model request at a time: the phase's output, or the budget
        that stopped it before a request."""
        agent = installed().for_phase(self._input.phase)
        problems = Problems()  # what the model was told its answers got wrong
        try:
            async with agent.iter(prompt) as agent_run:
                async for node in agent_run:
                    if Agent.is_model_request_node(node):
                        problems.note(node.request)
                        await self._record_unrecorded()
                        # Before each request: a budget already reached stops the phase here,
                        # so at most the request that crossed it went beyond.
                        stopped = budget_exceeded(self._budget(), self._spent)
                        if stopped is not None:
                            return None, stopped
                    elif Agent.is_call_tools_node(node):
                        self._unrecorded = node.model_response
                assert agent_run.result is not None
                return agent_run.result.output, None
        except (AgentRunError, UserError) as exc:
            await self._record_unrecorded()  # an answer the run then gave up on was still paid for
            raise self._failure(exc, problems) from exc

    def _failure(self, exc: AgentRunError | UserError, problems: Problems) -> ApplicationError:
        """What the phase fails with: each a non-retryable error of the project's run, which
        then stores its failed status with the message (Pydantic AI's plugin would fail the
        workflow outright, status and all)."""
        phase = self._input.phase.value
        if isinstance(exc, UnexpectedModelBehavior):  # output retries exhausted
            problems.failed(exc)
            return ApplicationError(problems.summary(phase, exc), type="AgentOutputInvalid", non_retryable=True)
        if isinstance(exc, ModelAPIError):  # Temporal retried the request as far as the policy allows
            message = f"the model request of the {phase} phase failed: {exc}"
            return ApplicationError(message, type="AgentModelFailed", non_retryable=True)
        return ApplicationError(f"the {phase} phase failed: {exc}", type="AgentRunFailed", non_retryable=True)

    async def _record_unrecorded(self) -> None:
        """The last response's usage on record, under a key of its own (this run's, its number)."""
        if self._unrecorded is None:
            return
        usage = self._usage_of(self._unrecorded)
        recorded: RecordedRequest = await _step(
            RECORD_AGENT_REQUEST, usage, RecordedRequest, f"record {usage.phase.value} request {usage.number}"
        )
        self._unrecorded = None
        self._took(recorded)

    def _usage_of(self, response: Any) -> RecordRequestInput:
        input = self._input
        number = len(self._requests) + 1
        return RecordRequestInput(
            key=f"{self._key}/{number}",
            project_id=input.project_id,
            run_number=input.run_number,
            phase=input.phase,
            task_id=input.task_id,
            number=number,
            **response_usage(response, default_model=installed().config.model),
        )

    def _took(self, recorded: RecordedRequest) -> None:
        self._requests.append(recorded.usage)
        self._spent = recorded.spent


async def _step(name: str, arg: Any, result_type: type, summary: str) -> Any:
    return await workflow.execute_local_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=STEP_TIMEOUT,
        retry_policy=STEP_RETRY,
        summary=summary,
    )


@workflow.defn(name=AGENT_PHASE_WORKFLOW)
class AgentPhaseWorkflow:
    """A phase as a workflow of its own, with the budget it was given."""

    @workflow.run
    async def run(self, input: AgentPhaseInput) -> AgentPhaseResult:
        info = workflow.info()
        return await PhaseRun(input, key=f"{info.workflow_id}/{info.run_id}").run()
