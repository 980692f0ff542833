"""Cancelling a run (DELETE, or ``handle.cancel()`` from a script) ends it cancelled,
whatever it was doing: its project is stored cancelled and its workflow closes CANCELED,
never FAILED. Real Temporal dev server, real activities, the fixture template."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError

from forgeflow.worker import build_activities, build_worker
from store.lifecycle import get_run, list_tasks
from store.projects import get_project
from tests.workflows.conftest import activities_with_task
from tests.workflows.test_project_generation import start
from workflows.project_generation import ProjectGenerationWorkflow
from workflows.types import (
    PREPARE,
    VERIFY_AND_EXPORT,
    AssembleInput,
    AssemblyResult,
    PrepareInput,
    PrepareResult,
    TaskInput,
)


async def assert_cancelled(handle: WorkflowHandle[Any, Any], db, key, project_id: int) -> None:
    with pytest.raises(WorkflowFailureError) as raised:
        await handle.result()
    assert isinstance(raised.value.cause, CancelledError), raised.value.cause
    described = await handle.describe()
    assert described.status is not None and described.status.name == "CANCELED"
    with db.session() as session:
        row = get_project(session, owner_id=key.owner_id, project_id=project_id)
    assert row is not None and (row.status, row.error_message) == ("cancelled", "Cancelled.")


async def test_cancel_mid_task_reaches_the_activity_through_its_heartbeats(client, settings, db, project_row):
    key, project_id = project_row()
    started, cancelled = threading.Event(), threading.Event()

    def task_core(input: TaskInput, real):
        if input.task.slug != "src":
            return real(input)
        started.set()
        try:
            while True:  # cancellation arrives with a heartbeat
                activity.heartbeat()
                time.sleep(0.1)
        except BaseException:
            cancelled.set()
            raise

    with ThreadPoolExecutor(8) as executor:
        activities = activities_with_task(settings, db, task_core)
        async with build_worker(client, settings, db=db, executor=executor, activities=activities):
            handle = await start(client, settings, project_id, key.owner, task_heartbeat_seconds=2)
            assert await asyncio.to_thread(started.wait, 20)
            await asyncio.sleep(0.5)
            await handle.cancel()
            await assert_cancelled(handle, db, key, project_id)
            assert await asyncio.to_thread(cancelled.wait, 10)
            # The run's own view agrees with the record (before: "failed").
            assert (await handle.query(ProjectGenerationWorkflow.tasks))["src"] == "cancelled"
    with db.session() as session:
        run = get_run(session, project_id=project_id, number=1)
        tasks = {t.key: t.status for t in list_tasks(session, run_id=run.id)}
    assert tasks["src"] == "cancelled" and tasks["root"] == "succeeded"  # finished work stays on record


def stalled(name: str, input_type: type, result_type: type, started: asyncio.Event) -> Callable[..., Any]:
    """An activity under ``name`` that starts and then works until it is cancelled."""

    async def work(input: Any) -> Any:
        started.set()
        while True:
            if not activity.info().is_local:  # a local activity's cancel needs no heartbeat
                activity.heartbeat()
            await asyncio.sleep(0.1)

    work.__annotations__ = {"input": input_type, "return": result_type}
    return activity.defn(name=name)(work)


@pytest.mark.parametrize(
    ("step", "input_type", "result_type"),
    [(PREPARE, PrepareInput, PrepareResult), (VERIFY_AND_EXPORT, AssembleInput, AssemblyResult)],
)
async def test_a_cancel_during_a_single_step_ends_the_run_cancelled(
    client, settings, db, project_row, step, input_type, result_type
):
    """Before: a step's activity, cancelled with the run, answered with an ActivityError
    whose cause is the cancellation, which the run took for a failure: stored failed, closed
    FAILED (seen as a flaky DELETE-right-after-create test)."""
    key, project_id = project_row()
    started = asyncio.Event()
    with ThreadPoolExecutor(8) as executor:
        real = [a for a in build_activities(settings, db) if a.__name__ != step]  # methods named as their activities
        stuck = stalled(step, input_type, result_type, started)
        async with build_worker(client, settings, db=db, executor=executor, activities=[*real, stuck]):
            handle = await start(client, settings, project_id, key.owner, task_heartbeat_seconds=2)
            await asyncio.wait_for(started.wait(), 20)
            await handle.cancel()
            await assert_cancelled(handle, db, key, project_id)
