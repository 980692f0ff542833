"""Tasks that are ready together share activities (``run_tasks``): the bound on parallel
tasks holds, the project is the same, a retried pack records each task once."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

from temporalio.api.enums.v1 import EventType
from temporalio.exceptions import ApplicationError

from api.schemas import FLAG_FIELDS
from engine.templates import DEFAULT_TEMPLATE_ID
from forgeflow.worker import build_worker
from store.lifecycle import list_events
from tests.workflows.conftest import activities_with_task
from tests.workflows.test_project_generation import start
from workflows.types import RUN_TASK, RUN_TASKS, ProjectStatus, TaskInput


async def scheduled_activities(handle) -> list[str]:
    history = await handle.fetch_history()
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


async def test_ready_tasks_share_activities_within_the_bound(client, settings, db, project_row):
    lock, running, peak, seen = threading.Lock(), [0], [0], []

    def task_core(input: TaskInput, real):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            seen.append(input.task.id)
        try:
            threading.Event().wait(0.05)  # long enough for tasks in other packs to overlap
            return real(input)
        finally:
            with lock:
                running[0] -= 1

    digests = []
    with ThreadPoolExecutor(8) as executor:
        activities = activities_with_task(settings, db, task_core)
        async with build_worker(client, settings, db=db, executor=executor, activities=activities):
            for bound in (2, 4):
                seen.clear()
                key, project_id = project_row()
                # One task a pack at the least: the ready tasks spread over every free slot.
                handle = await start(
                    client, settings, project_id, key.owner, max_parallel_tasks=bound, min_tasks_per_pack=1
                )
                result = await handle.result()
                assert result.status == ProjectStatus.READY
                digests.append(result.artifact.sha256)
                kinds = await scheduled_activities(handle)
                tasks = len(await handle.query("tasks"))
                assert RUN_TASKS in kinds, "some tasks shared an activity"
                assert kinds.count(RUN_TASK) + kinds.count(RUN_TASKS) < tasks
                assert len(seen) == len(set(seen)) == tasks, "each task ran once"
                if bound == 2:
                    assert peak[0] == 2, "two packs ran side by side, and no more"
    assert digests[0] == digests[1]


async def test_ready_tasks_go_at_least_min_tasks_per_pack_to_an_activity(client, worker, settings, project_row):
    counts, digests = {}, set()
    for least in (1, 4):
        key, project_id = project_row()
        handle = await start(client, settings, project_id, key.owner, max_parallel_tasks=4, min_tasks_per_pack=least)
        result = await handle.result()
        assert result.status == ProjectStatus.READY
        digests.add(result.artifact.sha256)
        kinds = await scheduled_activities(handle)
        counts[least] = kinds.count(RUN_TASK) + kinds.count(RUN_TASKS)
    # Fewer, fuller activities; the same project.
    assert counts[4] < counts[1], counts
    assert len(digests) == 1


async def test_a_retried_pack_records_each_task_once(client, settings, db, project_row):
    failures = []

    def task_core(input: TaskInput, real):
        result = real(input)
        if input.task.slug == "src" and not failures:
            failures.append(input.task.slug)
            raise ApplicationError("disk hiccup", type="Flaky")  # retryable: the pack runs again
        return result

    key, project_id = project_row()
    with ThreadPoolExecutor(8) as executor:
        activities = activities_with_task(settings, db, task_core)
        async with build_worker(client, settings, db=db, executor=executor, activities=activities):
            handle = await start(client, settings, project_id, key.owner, max_parallel_tasks=1)
            assert (await handle.result()).status == ProjectStatus.READY
            tasks = len(await handle.query("tasks"))
            assert RUN_TASKS in await scheduled_activities(handle), "the failed task was in a pack"
    assert failures == ["src"]
    with db.session() as session:
        events = list_events(session, project_id=project_id, after=0, limit=1000)
    succeeded = [e.task_id for e in events if e.type == "task_succeeded"]
    assert sorted(succeeded) == sorted(set(succeeded)) and len(succeeded) == tasks


async def pack_sizes(handle) -> list[int]:
    """The number of tasks each task activity of the run was given, in scheduling order."""
    history = await handle.fetch_history()
    sizes = []
    for e in history.events:
        if e.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            continue
        attrs = e.activity_task_scheduled_event_attributes
        if attrs.activity_type.name in (RUN_TASK, RUN_TASKS):
            payload = json.loads(attrs.input.payloads[0].data)
            sizes.append(len(payload["tasks"]) if attrs.activity_type.name == RUN_TASKS else 1)
    return sizes


async def test_ready_tasks_go_to_as_few_even_packs_as_the_minimum_allows(client, worker, settings, project_row):
    # The built-in template with every flag on: 1 task, then 9 ready together, then 4.
    answers = {"project_name": "Even Packs", **{flag: "y" for flag in FLAG_FIELDS}}
    sizes = {}
    for least in (4, 8):
        key, project_id = project_row()
        handle = await start(
            client,
            settings,
            project_id,
            key.owner,
            template=DEFAULT_TEMPLATE_ID,
            answers=answers,
            max_parallel_tasks=4,
            min_tasks_per_pack=least,
        )
        assert (await handle.result()).status == ProjectStatus.READY
        sizes[least] = await pack_sizes(handle)
    # Nine ready with a minimum of four: five and four (not four, four and one).
    assert sorted(sizes[4]) == [1, 4, 4, 5], sizes
    assert sizes[8] == [1, 9, 4], sizes
