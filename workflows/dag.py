"""Runs a task DAG inside a workflow: dependencies first, a bounded number at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from temporalio import workflow

from workflows.types import TaskDefinition, TaskResult


class DagFailed(Exception):
    def __init__(self, task_id: str, cause: BaseException) -> None:
        super().__init__(f"task {task_id} failed: {cause}")
        self.task_id = task_id
        self.cause = cause


async def run_dag(
    tasks: Sequence[TaskDefinition],
    max_parallel: int,
    run_task: Callable[[TaskDefinition], Awaitable[TaskResult]],
    may_start: Callable[[], bool] = lambda: True,
) -> dict[str, TaskResult]:
    """Start each task once its dependencies succeeded and a slot is free.

    The first failure cancels the tasks still running or waiting; tasks that
    depend on a failed one never start.
    """
    results: dict[str, TaskResult] = {}
    slots = asyncio.Semaphore(max_parallel)

    async def one(task: TaskDefinition) -> None:
        await workflow.wait_condition(lambda: all(dep in results for dep in task.dependencies) and may_start())
        async with slots:
            try:
                results[task.id] = await run_task(task)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise DagFailed(task.id, exc) from exc

    # Created in plan order, so the order of scheduled activities is deterministic.
    running = [asyncio.create_task(one(task)) for task in tasks]
    if not running:
        return results
    try:
        _done, pending = await workflow.wait(running, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        # The run was cancelled: take the task activities down with it.
        for task in running:
            task.cancel()
        await workflow.wait(running)
        raise
    for task in pending:
        task.cancel()
    if pending:
        await workflow.wait(pending)
    # Scan in creation order, never the (unordered) done set, so replays raise the
    # same failure.
    for finished in running:
        if finished.done() and not finished.cancelled() and finished.exception() is not None:
            raise finished.exception()  # type: ignore[misc]
    return results
