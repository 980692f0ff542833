"""A worker killed with SIGKILL while a task runs: a new worker finishes the run, and
the result is exactly what an uncrashed run makes, with nothing done or told twice."""

from __future__ import annotations

import hashlib

from temporalio.api.enums.v1 import PendingActivityState

from tests.reliability.harness import (
    Api,
    Stack,
    assert_event_log_sound,
    eventually,
    make_api_key,
    max_activity_attempt,
    zip_manifest,
)


async def kill_worker_mid_task(stack: Stack, api: Api, project_id: int) -> bool:
    """SIGKILL the worker as soon as the event log shows a task started and not yet
    finished; True if Temporal then holds a started task attempt that nobody will finish."""
    cursor, last = 0, ""

    async def task_running() -> bool:
        nonlocal cursor, last
        page = (await api.http.get(f"/projects/{project_id}/events", params={"after": cursor})).json()["events"]
        if page:
            cursor, last = page[-1]["id"], page[-1]["type"]
        return last == "task_started"

    await eventually(task_running, 60, "a task to be running", interval=0.01)
    assert stack.worker is not None
    stack.worker.kill()
    description = await (await stack.workflow(project_id)).describe()
    pending = description.raw_description.pending_activities
    return any(a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED for a in pending)


async def test_worker_sigkill_mid_task_loses_nothing(make_stack, database_url):
    key = make_api_key(database_url)
    stack = make_stack(database_url)
    await stack.start_temporal()
    stack.start_worker()
    await stack.start_api()
    async with Api(stack, key.key) as api:
        project_id = (await api.create())["id"]
        await api.wait_events(project_id, "task_succeeded", 3)
        # A kill between two tasks interrupts nothing; then a new worker runs a few more
        # tasks and the next kill tries again.
        for _ in range(5):
            interrupted = await kill_worker_mid_task(stack, api, project_id)
            stack.start_worker()
            if interrupted:
                break
            done = len(await api.events(project_id, type="task_succeeded"))
            await api.wait_events(project_id, "task_succeeded", done + 2)
        assert interrupted, "no kill landed while a task ran"

        # The reference, while the crashed run waits out its timeouts: the same template
        # and answers, on the new worker, never interrupted.
        reference = await api.create()
        await api.wait_status(reference["id"], "ready")
        expected = hashlib.sha256(await api.artifact(reference["id"])).hexdigest()

        ready = await api.wait_status(project_id, "ready", timeout=120)
        assert ready["artifact_ready"] is True
        data = await api.artifact(project_id)
        assert hashlib.sha256(data).hexdigest() == expected, "the crashed run's ZIP differs from the reference"

        # One commit per task: the ZIP's git history and every task row agree.
        tasks = await api.tasks(project_id)
        assert len(tasks) == stack.modules
        assert all(t["status"] == "succeeded" and t["commit_sha"] for t in tasks), tasks
        branches = zip_manifest(data)["git"]["branches"]
        assert branches == {t["branch_name"]: t["commit_sha"] for t in tasks}
        assert len(set(branches.values())) == stack.modules

        assert_event_log_sound(await api.events(project_id), [t["id"] for t in tasks])

    handle = await stack.workflow(project_id)
    assert await max_activity_attempt(handle) >= 2, "the interrupted task was not retried"
