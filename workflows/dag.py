"""Runs a task DAG inside a workflow: dependencies first, a bounded number at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from temporalio import workflow

from workflows.failures import cancelled_within
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
    # The first failure in creation order, never the (unordered) done set, so replays raise
    # the same one; passing over the tasks cancelled just above because of it, whose
    # activities answer with their cancel (a DagFailed too, but not what went wrong).
    failures = [f for t in running if t.done() and not t.cancelled() and (f := t.exception()) is not None]
    if failures:
        raise next((f for f in failures if not cancelled_within(f)), failures[0])
    return results


async def run_dag_packed(
    tasks: Sequence[TaskDefinition],
    max_parallel: int,
    run_pack: Callable[[list[TaskDefinition]], Coroutine[Any, Any, list[TaskResult]]],
    may_start: Callable[[], bool] = lambda: True,
    max_pack: int = 25,
    min_pack: int = 1,
) -> dict[str, TaskResult]:
    """As ``run_dag``, but tasks that are ready together share activities: the ready tasks
    are spread over the free slots, at least ``min_pack`` and at most ``max_pack`` to an
    activity, each activity running its tasks one after another. At most ``max_parallel``
    packs run at once, and a plan of many small tasks pays a few server round trips
    instead of one per task.

    Ready tasks go to as few packs as ``min_pack`` allows, of even sizes (9 ready, minimum
    4: 5 and 4, not 4, 4 and 1): every pack's completion costs the run a workflow task, and
    several finishing together wait for each other's.

    ``run_pack`` raises ``DagFailed`` naming the task that failed."""
    results: dict[str, TaskResult] = {}
    waiting = list(tasks)  # plan order: packs are formed the same way on every replay
    running: list[asyncio.Task[list[TaskResult]]] = []

    def ready() -> list[TaskDefinition]:
        return [t for t in waiting if all(dep in results for dep in t.dependencies)]

    def can_start() -> bool:
        return len(running) < max_parallel and may_start() and bool(ready())

    try:
        while waiting or running:
            await workflow.wait_condition(lambda: can_start() or any(t.done() for t in running))
            for finished in [t for t in running if t.done()]:
                running.remove(finished)
                for result in finished.result():  # a failed pack raises here
                    results[result.task_id] = result
            if not can_start():
                continue
            startable = ready()
            slots = max_parallel - len(running)
            packs = max(1, min(slots, len(startable) // min_pack))
            size = min(max_pack, -(-len(startable) // packs))
            for start in range(0, min(len(startable), slots * size), size):
                pack = startable[start : start + size]
                for task in pack:
                    waiting.remove(task)
                running.append(asyncio.create_task(run_pack(pack)))
    except BaseException:
        # A failure or the run's cancellation: take the packs still running down with it.
        for pack_run in running:
            pack_run.cancel()
        if running:
            await workflow.wait(running)
            for pack_run in running:  # their failures are this one's consequence: seen, not logged
                if not pack_run.cancelled():
                    pack_run.exception()
        raise
    return results
