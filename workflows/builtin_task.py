"""A task of agent mode's plan built by the built-in coding agent: a child workflow of the
project's run, one per task, so the task's model requests and tool calls fill a history of
their own rather than the run's. Its input and result are the coding agents' task activity's
(``CodingTaskInput``, ``CodingTaskResult``): the run calls :func:`run_builtin_task` where it
would run that activity. The work itself is agents/coding/builtin_run.py."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from agents.coding.builtin_types import BUILTIN_TASK_WORKFLOW
    from workflows.coding_types import CodingTaskInput, CodingTaskResult
    from workflows.failures import cancels_the_run, describe

# The longest the built-in agent may work on one task.
BUILTIN_TASK_TIMEOUT = timedelta(hours=2)


@workflow.defn(name=BUILTIN_TASK_WORKFLOW)
class BuiltinTaskWorkflow:
    @workflow.run
    async def run(self, input: CodingTaskInput) -> CodingTaskResult:
        with workflow.unsafe.imports_passed_through():
            # Pydantic AI, imported only where a task runs (a worker with a provider has it).
            from agents.coding.builtin_run import BuiltinRun

        info = workflow.info()
        return await BuiltinRun(input, key=f"{info.workflow_id}/{info.run_id}").run()


def builtin_task_id(input: CodingTaskInput) -> str:
    """The child's id: the run's workflow, the run and the task (the same on replay)."""
    task, fix = input.task, input.fix
    found = f"{workflow.info().workflow_id}/run-{input.request.run_number}/task-{task.sequence:03d}-{task.slug}"
    return found if fix is None else f"{found}/fix-{fix.reason}-{fix.attempt}"


async def run_builtin_task(input: CodingTaskInput, *, summary: str) -> CodingTaskResult:
    """The task, built by the built-in agent in a child workflow; its failure raised as a
    non-retryable ApplicationError with the child's own message (what went wrong, named)."""
    try:
        result: CodingTaskResult = await workflow.execute_child_workflow(
            BUILTIN_TASK_WORKFLOW,
            input,
            id=builtin_task_id(input),
            result_type=CodingTaskResult,
            execution_timeout=BUILTIN_TASK_TIMEOUT,
            static_summary=summary,
        )
    except ChildWorkflowError as exc:
        if cancels_the_run(exc):
            raise  # cancelled with its run: passed on as the cancel it is
        kind = exc.cause.type if isinstance(exc.cause, ApplicationError) else None
        raise ApplicationError(describe(exc, through=(ChildWorkflowError,)), type=kind, non_retryable=True) from exc
    return result
