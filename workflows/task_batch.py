"""Task activities, and TaskBatchWorkflow: the tasks of a large plan in slices, each slice
a child workflow, so that no single history grows with the size of the plan."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.dag import DagFailed, run_dag, run_dag_packed
    from workflows.reporting import describe
    from workflows.types import (
        RUN_TASK,
        RUN_TASKS,
        PauseState,
        ProjectGenerationInput,
        TaskBatchInput,
        TaskBatchResult,
        TaskDefinition,
        TaskInput,
        TaskPackInput,
        TaskPackResult,
        TaskResult,
        TemplateRequest,
    )

TASK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=20), maximum_attempts=5
)
T = TypeVar("T")
# The failure type a batch reports a failed task with; its details name the task.
TASK_FAILED = "TaskFailed"
# Marks runs whose ready tasks share activities (workflows.dag.run_dag_packed).
TASK_PACKS_PATCH = "task-packs"
# Marks runs whose packs hold at least min_tasks_per_pack tasks where that many are ready.
PACK_MINIMUM_PATCH = "pack-minimum"
# Marks runs whose ready tasks go to as few packs as the minimum allows, of even sizes.
EVEN_PACKS_PATCH = "even-packs"


async def execute_task(request: TemplateRequest, task: TaskDefinition, total: int, heartbeat: float) -> TaskResult:
    result: TaskResult = await workflow.execute_activity(
        RUN_TASK,
        TaskInput(request=request, task=task, total_tasks=total),
        result_type=TaskResult,
        start_to_close_timeout=timedelta(minutes=10),
        heartbeat_timeout=timedelta(seconds=heartbeat),
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


def batches(tasks: list[TaskDefinition], size: int) -> list[list[TaskDefinition]]:
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
class TaskBatchWorkflow:
    @workflow.init
    def __init__(self, input: TaskBatchInput) -> None:
        # The parent forwards pause and resume; until then the slice starts as the parent was.
        self._paused = input.paused
        self._done = 0

    @workflow.run
    async def run(self, input: TaskBatchInput) -> TaskBatchResult:
        def done(count: int) -> None:
            self._done += count
            workflow.set_current_details(f"Tasks: {self._done}/{len(input.tasks)} of this slice done")

        async def one(task: TaskDefinition) -> TaskResult:
            result = await execute_task(input.request, task, input.total_tasks, input.task_heartbeat_seconds)
            done(1)
            return result

        async def pack(tasks: list[TaskDefinition]) -> list[TaskResult]:
            results = await execute_pack(input.request, tasks, input.total_tasks, input.task_heartbeat_seconds)
            done(len(tasks))
            return results

        try:
            if workflow.patched(TASK_PACKS_PATCH):
                least = input.min_pack if workflow.patched(PACK_MINIMUM_PATCH) else 1
                results = await run_dag_packed(
                    input.tasks,
                    input.max_parallel,
                    pack,
                    lambda: not self._paused,
                    min_pack=least,
                    even=workflow.patched(EVEN_PACKS_PATCH),
                )
            else:
                results = await run_dag(input.tasks, input.max_parallel, one, lambda: not self._paused)
        except DagFailed as exc:
            error = describe(exc.cause)
            # Non-retryable: the task activity has used up its own retries already.
            raise ApplicationError(
                f"task {exc.task_id} failed: {error}",
                {"task_id": exc.task_id, "error": error},
                type=TASK_FAILED,
                non_retryable=True,
            ) from exc
        return TaskBatchResult(
            bundles={k: v.bundle_key for k, v in results.items()},
            commits={k: v.commit_sha for k, v in results.items()},
        )

    @workflow.signal
    def set_paused(self, state: PauseState) -> None:
        self._paused = state.paused


class BatchRunner:
    """The parent's side of running tasks: one, a pack, or a large plan's slices, each a
    child workflow; the run's view of its tasks is kept as they go."""

    _input: ProjectGenerationInput
    _paused: bool
    _tasks_total: int
    _tasks_done: int
    _task_states: dict[str, str]

    if TYPE_CHECKING:

        def _details(self) -> str: ...

    async def _tracked(self, tasks: list[TaskDefinition], work: Awaitable[T]) -> T:
        """Await ``work`` for ``tasks``, keeping the run's own view of them current: the
        ``tasks`` query and the Web UI's details."""
        for task in tasks:
            self._task_states[task.id] = "running"
        try:
            result = await work
        except BaseException:
            for task in tasks:
                self._task_states[task.id] = "failed"
            raise
        for task in tasks:
            self._task_states[task.id] = "succeeded"
        self._tasks_done += len(tasks)
        workflow.set_current_details(self._details())
        return result

    async def _run_task(self, request: TemplateRequest, task: TaskDefinition) -> TaskResult:
        heartbeat = self._input.task_heartbeat_seconds
        return await self._tracked([task], execute_task(request, task, self._tasks_total, heartbeat))

    async def _run_pack(self, request: TemplateRequest, tasks: list[TaskDefinition]) -> list[TaskResult]:
        heartbeat = self._input.task_heartbeat_seconds
        return await self._tracked(tasks, execute_pack(request, tasks, self._tasks_total, heartbeat))

    def _slice_moved(self, handle: asyncio.Task[Any], told: bool) -> bool:
        return handle.done() or self._paused != told

    async def _run_batches(
        self, request: TemplateRequest, tasks: list[TaskDefinition]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """The plan's tasks in slices, one child workflow each, one after another: the
        project's bound on parallel tasks holds, and each history stays a few thousand
        events however large the plan."""
        inp = self._input
        bundles: dict[str, str] = {}
        commits: dict[str, str] = {}
        for index, chunk in enumerate(batches(tasks, inp.tasks_per_batch), start=1):
            result = await self._tracked(chunk, self._run_slice(request, index, chunk))
            bundles.update(result.bundles)
            commits.update(result.commits)
        return bundles, commits

    async def _run_slice(self, request: TemplateRequest, index: int, chunk: list[TaskDefinition]) -> TaskBatchResult:
        inp = self._input
        handle = await workflow.start_child_workflow(
            TaskBatchWorkflow.run,
            TaskBatchInput(
                request=request,
                tasks=chunk,
                total_tasks=self._tasks_total,
                max_parallel=inp.max_parallel_tasks,
                task_heartbeat_seconds=inp.task_heartbeat_seconds,
                paused=self._paused,
                min_pack=inp.min_tasks_per_pack,
            ),
            id=f"{workflow.info().workflow_id}-run-{inp.run_number}-tasks-{index}",
            static_summary=f"{inp.slug}: tasks {chunk[0].sequence}-{chunk[-1].sequence} of {self._tasks_total}",
        )
        return await self._follow(handle)

    async def _follow(self, handle: workflow.ChildWorkflowHandle[Any, TaskBatchResult]) -> TaskBatchResult:
        """Wait for a slice, passing pause and resume on to it."""
        told = self._paused
        try:
            while not handle.done():
                await workflow.wait_condition(partial(self._slice_moved, handle, told))
                if self._paused != told:
                    told = self._paused
                    await handle.signal(TaskBatchWorkflow.set_paused, PauseState(paused=told))
        except asyncio.CancelledError:
            # The run was cancelled while it watched: the slice goes down with it.
            handle.cancel()
            raise
        return await handle
