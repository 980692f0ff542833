"""One task built by the built-in coding agent, in workflow code (its workflow:
workflows/builtin_task.py). Imported passed through, by a workflow that runs a task.

start (the task's start commit, stored; the prompt) -> the agent's run, driven with
``agent.iter()`` as a phase is (agents/workflow.py): before each model request, the last
response's usage goes on record and the task's limits are checked (its request count, its
cost cap, the project's budget as stored); each tool call is an activity that reads the
start commit or stores a write, the overlay of the model's changes kept here -> finish (the
start commit plus the overlay, checked and committed as every coding agent's work is).

On replay nothing is sent again: each model request, tool call and step is an activity
whose recorded result is reused, and the overlay is rebuilt from them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic_ai import Agent
from pydantic_ai.exceptions import AgentRunError, ModelAPIError, UnexpectedModelBehavior, UserError
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from agents.coding.builtin_agent import installed
from agents.coding.builtin_types import (
    FINISH_BUILTIN_TASK,
    MAX_REQUESTS,
    RECORD_BUILTIN_REQUEST,
    START_BUILTIN_TASK,
    BuiltinStart,
    FinishInput,
    RecordBuiltinInput,
    RecordedBuiltin,
    TaskFiles,
    TaskReport,
)
from agents.types import Spend, response_usage
from workflows.coding_types import CodingTaskInput, CodingTaskResult

STEP_TIMEOUT = timedelta(minutes=5)
STEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
STEP_PATIENCE = timedelta(minutes=30)  # a store or database that is away, waited out
RECORD_TIMEOUT = timedelta(seconds=30)
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5)


class BuiltinRun:
    """``key``: this run's own; its requests are recorded under ``key/number``."""

    def __init__(self, input: CodingTaskInput, key: str) -> None:
        self._input = input
        self._key = key
        self._requests = 0  # recorded so far
        self._input_tokens = 0
        self._output_tokens = 0
        self._cost: float | None = 0.0  # None once a request could not be priced
        self._spent: Spend | None = None
        self._stop: str | None = None  # the project's budget, used up
        self._unrecorded: Any = None  # the last response, until its usage is on record
        self._cap: float | None = input.max_cost_usd_per_task  # the tighter with the worker's, from start

    async def run(self) -> CodingTaskResult:
        task = self._input.task
        start: BuiltinStart = await _step(START_BUILTIN_TASK, self._input, BuiltinStart, f"start {task.slug}")
        caps = [cap for cap in (self._cap, start.worker_cap_usd) if cap is not None]
        self._cap = min(caps) if caps else None
        files = TaskFiles(start=start, path_scope=list(task.path_scope))
        report = await self._converse(start.prompt, files)
        await self._record_unrecorded()
        finish = FinishInput(
            task=self._input,
            start=start,
            overlay=files.overlay,
            summary=report.summary,
            risks=report.risks,
            input_tokens=self._input_tokens,
            output_tokens=self._output_tokens,
            cost_usd=self._cost,
            spent=self._spent,
        )
        result: CodingTaskResult = await _step(FINISH_BUILTIN_TASK, finish, CodingTaskResult, f"commit {task.slug}")
        return result

    async def _converse(self, prompt: str, files: TaskFiles) -> TaskReport:
        agent = installed().agent
        try:
            async with agent.iter(prompt, deps=files) as agent_run:
                async for node in agent_run:
                    if Agent.is_model_request_node(node):
                        await self._record_unrecorded()
                        self._check_limits()  # before each request: a limit reached stops the task here
                    elif Agent.is_call_tools_node(node):
                        self._unrecorded = node.model_response
                assert agent_run.result is not None
                output: TaskReport = agent_run.result.output
                return output
        except (AgentRunError, UserError) as exc:
            await self._record_unrecorded()  # an answer the run then gave up on was still paid for
            raise self._failure(exc) from exc

    def _check_limits(self) -> None:
        slug, cap = self._input.task.slug, self._cap
        why = None
        if self._requests >= MAX_REQUESTS:
            why = f"it made {self._requests} model requests, the most one task may"
        elif cap is not None and self._cost is None:
            why = f"a request could not be priced, so its cost cap of ${cap:g} counts as reached (FORGEFLOW_LLM_PRICES)"
        elif cap is not None and self._cost is not None and self._cost >= cap:
            why = f"it spent ${self._cost:.6f}, reaching its cost cap of ${cap:g}"
        elif self._stop is not None:
            why = f"the project's {self._stop}"
        if why is not None:
            message = f"task {slug}: the builtin agent stopped: {why}"
            raise ApplicationError(message, type="AgentLimitReached", non_retryable=True)

    def _failure(self, exc: AgentRunError | UserError) -> ApplicationError:
        slug = self._input.task.slug
        if isinstance(exc, UnexpectedModelBehavior):  # retries of a tool or of the output exhausted
            message = f"task {slug}: the builtin agent gave up: {exc}"
            return ApplicationError(message, type="AgentOutputInvalid", non_retryable=True)
        if isinstance(exc, ModelAPIError):
            message = f"task {slug}: the builtin agent's model request failed: {exc}"
            return ApplicationError(message, type="AgentModelFailed", non_retryable=True)
        return ApplicationError(f"task {slug}: the builtin agent failed: {exc}", type="AgentFailed", non_retryable=True)

    async def _record_unrecorded(self) -> None:
        response, self._unrecorded = self._unrecorded, None
        if response is None:
            return
        input, number = self._input, self._requests + 1
        record = RecordBuiltinInput(
            key=f"{self._key}/{number}",
            project_id=input.request.project_id,
            run_number=input.request.run_number,
            task_id=input.task.id,
            number=number,
            **response_usage(response, default_model=installed().config.model),
        )
        recorded: RecordedBuiltin = await workflow.execute_local_activity(
            RECORD_BUILTIN_REQUEST,
            record,
            result_type=RecordedBuiltin,
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
            summary=f"record task request {number}",
        )
        self._requests = number
        self._input_tokens += record.input_tokens
        self._output_tokens += record.output_tokens
        if self._cost is not None:
            self._cost = None if recorded.cost_usd is None else self._cost + recorded.cost_usd
        self._spent, self._stop = recorded.spent, recorded.stop


async def _step(name: str, arg: Any, result_type: type, summary: str) -> Any:
    return await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=STEP_TIMEOUT,
        schedule_to_close_timeout=STEP_PATIENCE,
        retry_policy=STEP_RETRY,
        summary=summary,
    )
