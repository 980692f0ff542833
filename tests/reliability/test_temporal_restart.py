"""The Temporal server killed mid-run and started again on its database file: the
worker and the API reconnect by themselves and the run finishes."""

from __future__ import annotations

from tests.reliability.harness import Api, assert_event_log_sound, make_api_key


async def test_temporal_restart_mid_run_still_ends_ready(make_stack, sqlite_url):
    key = make_api_key(sqlite_url)
    stack = make_stack(sqlite_url, modules=20, persistent_temporal=True)
    await stack.start_temporal()
    stack.start_worker()
    await stack.start_api()
    async with Api(stack, key.key) as api:
        project_id = (await api.create())["id"]
        await api.wait_events(project_id, "task_succeeded", 3)

        assert stack.temporal is not None
        stack.temporal.kill()
        # Reads come from the projection: they go on while Temporal is down.
        during = await api.project(project_id)
        assert during["status"] == "generating" and not during["artifact_ready"]
        await stack.start_temporal()  # same port, same database file

        await api.wait_status(project_id, "ready", timeout=120)
        tasks = await api.tasks(project_id)
        assert len(tasks) == stack.modules and all(t["status"] == "succeeded" for t in tasks)
        assert_event_log_sound(await api.events(project_id), [t["id"] for t in tasks])
    assert stack.worker is not None and stack.worker.alive, "the worker gave up on the restarted server"
