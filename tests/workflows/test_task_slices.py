"""Large plans run their tasks in child workflows (TaskSliceWorkflow): the same project
comes out, each history stays small, failures and pauses cross the parent/child line."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from forgeflow.worker import build_worker
from store.projects import get_project
from tests.workflows.conftest import activities_with_task
from tests.workflows.test_project_generation import start
from workflows.project_generation import ProjectGenerationWorkflow
from workflows.types import RUN_TASK, PauseUpdate, ProjectStatus, TaskInput


def _count(history, event_type) -> int:
    return sum(1 for e in history.events if e.event_type == event_type)


async def test_a_batched_run_gives_the_same_zip_with_its_tasks_in_child_workflows(
    client, worker, settings, project_row
):
    key, flat_id = project_row()
    flat = await (await start(client, settings, flat_id, key.owner)).result()
    key, batched_id = project_row()
    handle = await start(client, settings, batched_id, key.owner, tasks_per_batch=1)
    batched = await handle.result()
    assert batched.status == ProjectStatus.READY
    assert batched.artifact.sha256 == flat.artifact.sha256

    parent = await handle.fetch_history()
    children = _count(parent, EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED)
    tasks = await handle.query(ProjectGenerationWorkflow.tasks)
    assert children == len(tasks) >= 2, "one child per task with tasks_per_batch=1"
    assert set(tasks.values()) == {"succeeded"}
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in parent.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert RUN_TASK not in scheduled, "the parent runs no task itself"
    for index in range(1, children + 1):
        child = client.get_workflow_handle(f"{handle.id}-run-1-tasks-{index}")
        assert _count(await child.fetch_history(), EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED) == 1


async def test_a_task_failing_in_a_child_fails_the_project_naming_the_task(client, settings, db, project_row):
    def task_core(input: TaskInput, real):
        if input.task.slug == "src":
            raise ApplicationError("disk on fire", type="Boom", non_retryable=True)
        return real(input)

    key, project_id = project_row()
    with ThreadPoolExecutor(8) as executor:
        activities = activities_with_task(settings, db, task_core)
        async with build_worker(client, settings, db=db, executor=executor, activities=activities):
            handle = await start(client, settings, project_id, key.owner, tasks_per_batch=1)
            with pytest.raises(WorkflowFailureError):
                await handle.result()
    with db.session() as session:
        row = get_project(session, owner_id=key.owner_id, project_id=project_id)
    assert row.status == "failed"
    assert row.error_message == "Task src failed: disk on fire"


async def test_pause_reaches_the_running_child_and_resume_finishes_the_run(client, settings, db, project_row):
    first_started, release = threading.Event(), threading.Event()
    started: list[str] = []

    def task_core(input: TaskInput, real):
        started.append(input.task.slug)
        if len(started) == 1:
            first_started.set()
            while not release.wait(0.1):
                activity.heartbeat()
        return real(input)

    key, project_id = project_row()
    with ThreadPoolExecutor(8) as executor:
        activities = activities_with_task(settings, db, task_core)
        async with build_worker(client, settings, db=db, executor=executor, activities=activities):
            # One slice holding every task, one at a time: the pause must reach the child.
            handle = await start(
                client,
                settings,
                project_id,
                key.owner,
                tasks_per_batch=2,
                max_parallel_tasks=1,
                task_heartbeat_seconds=5,
            )
            assert await asyncio.to_thread(first_started.wait, 20)
            await handle.execute_update(ProjectGenerationWorkflow.pause, PauseUpdate(reason="look"))
            release.set()
            await asyncio.sleep(1.5)  # long enough for the child to start a next task, were it not paused
            assert len(started) == 1, started
            await handle.execute_update(ProjectGenerationWorkflow.resume, PauseUpdate())
            result = await handle.result()
    assert result.status == ProjectStatus.READY
    assert len(started) >= 3
    history = await handle.fetch_history()
    assert _count(history, EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED) >= 2
