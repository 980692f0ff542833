"""Running a plan's tasks: ready tasks in packs, one activity a pack (``TaskRunner``), and
a large plan in slices, each slice a child workflow (``TaskSliceWorkflow``), so that no
single history grows with the size of the plan."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.dag import DagFailed, run_dag_packed
    from workflows.failures import TASK_FAILED, describe, ended_as
    from workflows.state import RunState
    from workflows.status import StatusWriter
    from workflows.steps import OUTAGE_PATIENCE
    from workflows.types import (
        RUN_TASK,
        RUN_TASKS,
        PauseState,
        ProjectGenerationInput,
        TaskDefinition,
        TaskInput,
        TaskPackInput,
        TaskPackResult,
        TaskResult,
        TaskSliceInput,
        TaskSliceResult,
        TemplateRequest,
    )

# As the engine steps (workflows.steps.ENGINE_RETRY): a task the template got wrong fails
# at once; a task that cannot store its bundle waits for the store, however long it is down.
TASK_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=20))
T = TypeVar("T")


async def execute_task(request: TemplateRequest, task: TaskDefinition, total: int, heartbeat: float) -> TaskResult:
    result: TaskResult = await workflow.execute_activity(
        RUN_TASK,
        TaskInput(request=request, task=task, total_tasks=total),
        result_type=TaskResult,
        start_to_close_timeout=timedelta(minutes=10),
        heartbeat_timeout=timedelta(seconds=heartbeat),
        schedule_to_close_timeout=OUTAGE_PATIENCE,
        retry_policy=TASK_RETRY,
        summary=f"task {task.sequence}/{total}: {task.slug}",
    )
    return result


async def execute_pack(
    request: TemplateRequest, tasks: list[TaskDefinition], total: int, heartbeat: float
) -> list[TaskResult]:
    """Tasks that were ready together, in one activity; a single task in its own ``run_task``."""
    if len(tasks) == 1:
        try:
            return [await execute_task(request, tasks[0], total, heartbeat)]
        except Exception as exc:
            raise DagFailed(tasks[0].id, exc) from exc
    slugs = ", ".join(t.slug for t in tasks)
    try:
        packed: TaskPackResult = await workflow.execute_activity(
            RUN_TASKS,
            TaskPackInput(request=request, tasks=tasks, total_tasks=total),
            result_type=TaskPackResult,
            start_to_close_timeout=timedelta(minutes=10) * len(tasks),
            heartbeat_timeout=timedelta(seconds=heartbeat),
            schedule_to_close_timeout=OUTAGE_PATIENCE + timedelta(minutes=10) * len(tasks),
            retry_policy=TASK_RETRY,
            summary=f"tasks {tasks[0].sequence}-{tasks[-1].sequence}/{total}: {slugs}"[:200],
        )
    except ActivityError as exc:
        raise DagFailed(_failed_task(exc, tasks), exc) from exc
    return packed.results


def _failed_task(exc: ActivityError, tasks: list[TaskDefinition]) -> str:
    # The activity names the task that failed; a timeout of the whole pack names its first.
    cause = exc.cause
    if isinstance(cause, ApplicationError) and cause.details and isinstance(cause.details[0], dict):
        return str(cause.details[0].get("task_id", tasks[0].id))
    return tasks[0].id


def slices(tasks: list[TaskDefinition], size: int) -> list[list[TaskDefinition]]:
    """Consecutive slices of a plan in dependency order. A task's dependencies are in its
    own slice or an earlier one, which has finished before this one starts, so only the
    dependencies inside the slice are kept."""
    slices = []
    for start in range(0, len(tasks), size):
        chunk = tasks[start : start + size]
        inside = {t.id for t in chunk}
        slices.append(
            [t.model_copy(update={"dependencies": [d for d in t.dependencies if d in inside]}) for t in chunk]
        )
    return slices


@workflow.defn
class TaskSliceWorkflow:
    @workflow.init
    def __init__(self, input: TaskSliceInput) -> None:
        # The parent forwards pause and resume; until then the slice starts as the parent was.
        self._paused = input.paused
        self._done = 0

    @workflow.run
    async def run(self, input: TaskSliceInput) -> TaskSliceResult:
        async def pack(tasks: list[TaskDefinition]) -> list[TaskResult]:
            results = await execute_pack(input.request, tasks, input.total_tasks, input.task_heartbeat_seconds)
            self._done += len(tasks)
            workflow.set_current_details(f"Tasks: {self._done}/{len(input.tasks)} of this slice done")
            return results

        try:
            results = await run_dag_packed(
                input.tasks, input.max_parallel, pack, lambda: not self._paused, min_pack=input.min_pack
            )
        except DagFailed as exc:
            error = describe(exc.cause)
            # Non-retryable: the task activity has used up its own retries already.
            raise ApplicationError(
                f"task {exc.task_id} failed: {error}",
                {"task_id": exc.task_id, "error": error},
                type=TASK_FAILED,
                non_retryable=True,
            ) from exc
        return TaskSliceResult(
            bundles={k: v.bundle_key for k, v in results.items()},
            commits={k: v.commit_sha for k, v in results.items()},
        )

    @workflow.signal
    def set_paused(self, state: PauseState) -> None:
        self._paused = state.paused


class TaskRunner:
    """The parent's side of running tasks: packs of ready tasks, or a large plan's slices,
    each a child workflow; the run's view of its tasks is kept as they go."""

    def __init__(self, input: ProjectGenerationInput, state: RunState, writer: StatusWriter) -> None:
        self._input = input
        self._state = state
        self._writer = writer

    async def run(self, request: TemplateRequest, tasks: list[TaskDefinition]) -> tuple[dict[str, str], dict[str, str]]:
        """Every task of the plan: bundle keys and commit shas by task id. A failed task
        raises DagFailed, or a ChildWorkflowError whose cause names it."""
        inp = self._input
        if len(tasks) > inp.tasks_per_batch:
            return await self._run_slices(request, tasks)
        pack = partial(self._run_pack, request)
        results = await run_dag_packed(
            tasks, inp.max_parallel_tasks, pack, self._may_start, min_pack=inp.min_tasks_per_pack
        )
        return {k: v.bundle_key for k, v in results.items()}, {k: v.commit_sha for k, v in results.items()}

    def _may_start(self) -> bool:
        return not self._state.paused

    async def _tracked(self, tasks: list[TaskDefinition], work: Awaitable[T]) -> T:
        """Await ``work`` for ``tasks``, keeping the run's own view of them current: the
        ``tasks`` query and the Web UI's details."""
        states = self._state.task_states
        for task in tasks:
            states[task.id] = "running"
        try:
            result = await work
        except BaseException as exc:
            for task in tasks:
                states[task.id] = ended_as(exc)
            raise
        for task in tasks:
            states[task.id] = "succeeded"
        self._state.tasks_done += len(tasks)
        workflow.set_current_details(self._writer.details())
        return result

    async def _run_pack(self, request: TemplateRequest, tasks: list[TaskDefinition]) -> list[TaskResult]:
        heartbeat = self._input.task_heartbeat_seconds
        return await self._tracked(tasks, execute_pack(request, tasks, self._state.tasks_total, heartbeat))

    async def _run_slices(
        self, request: TemplateRequest, tasks: list[TaskDefinition]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """The plan's tasks in slices, one child workflow each, one after another: the
        project's bound on parallel tasks holds, and each history stays a few thousand
        events however large the plan."""
        bundles: dict[str, str] = {}
        commits: dict[str, str] = {}
        for index, chunk in enumerate(slices(tasks, self._input.tasks_per_batch), start=1):
            result = await self._tracked(chunk, self._run_slice(request, index, chunk))
            bundles.update(result.bundles)
            commits.update(result.commits)
        return bundles, commits

    async def _run_slice(self, request: TemplateRequest, index: int, chunk: list[TaskDefinition]) -> TaskSliceResult:
        inp = self._input
        handle = await workflow.start_child_workflow(
            TaskSliceWorkflow.run,
            TaskSliceInput(
                request=request,
                tasks=chunk,
                total_tasks=self._state.tasks_total,
                max_parallel=inp.max_parallel_tasks,
                task_heartbeat_seconds=inp.task_heartbeat_seconds,
                paused=self._state.paused,
                min_pack=inp.min_tasks_per_pack,
            ),
            id=f"{workflow.info().workflow_id}-run-{inp.run_number}-tasks-{index}",
            static_summary=f"{inp.slug}: tasks {chunk[0].sequence}-{chunk[-1].sequence} of {self._state.tasks_total}",
        )
        return await self._follow(handle)

    def _slice_moved(self, handle: asyncio.Task[Any], told: bool) -> bool:
        return handle.done() or self._state.paused != told

    async def _follow(self, handle: workflow.ChildWorkflowHandle[Any, TaskSliceResult]) -> TaskSliceResult:
        """Wait for a slice, passing pause and resume on to it."""
        told = self._state.paused
        try:
            while not handle.done():
                await workflow.wait_condition(partial(self._slice_moved, handle, told))
                if self._state.paused != told:
                    told = self._state.paused
                    await handle.signal(TaskSliceWorkflow.set_paused, PauseState(paused=told))
        except asyncio.CancelledError:
            # The run was cancelled while it watched: the slice goes down with it.
            handle.cancel()
            raise
        return await handle
