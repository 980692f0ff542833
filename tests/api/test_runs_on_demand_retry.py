"""A retry of a run on demand is the same change on the same history: once the change's plan
was settled, no model is asked again and its finished tasks are kept (their commits); a
change retried before its plan was approved is planned again, from the change, never from
the project's first brief. Real HTTP, Temporal, git and sandbox; the fake model and the
``command`` coding agent (agents/fake_coder.py) stand in for the outside."""

from __future__ import annotations

from agents.fake_llm import FakeLlm, Reply

# The fake model, and the command agent that fails a *-flaky task while flaky_marker exists.
from tests.api.test_coding_agents import flaky_marker, plan, settings  # noqa: F401 (fixtures)
from tests.api.test_lifecycle import wait_for_status
from tests.api.test_runs_on_demand import change_requests, ready_project
from tests.api.test_template_updates import run_ends


async def tasks_of(http, auth, project_id: int, run: int) -> dict[str, dict]:
    listed = await http.get(f"/projects/{project_id}/runs/{run}/tasks", headers=auth)
    return {t["id"]: t for t in listed.json()["tasks"]}


async def test_a_failed_change_is_retried_on_the_same_history_keeping_its_finished_tasks(
    http,
    worker,
    make_key,
    fake: FakeLlm,
    flaky_marker,  # noqa: F811
):
    auth = {"X-API-Key": make_key().key}
    project_id = await ready_project(http, auth, fake)
    run1 = (await http.get(f"/projects/{project_id}/runs/1", headers=auth)).json()

    flaky_marker.write_text("fail")
    shape = plan(("csv", "changes/csv/**", []), ("report-flaky", "changes/report/**", []))
    fake.script(Reply(), Reply(), Reply(arguments=shape))  # the change's clarify, spec and plan
    started = await http.post(f"/projects/{project_id}/runs", json={"prompt": "Add CSV and a report"}, headers=auth)
    assert started.status_code == 202 and started.json()["run"] == 2, started.text
    failed = await run_ends(http, auth, project_id, 2)
    assert failed["status"] == "failed" and "report-flaky" in failed["error_message"], failed
    first = await tasks_of(http, auth, project_id, 2)
    assert first["csv"]["status"] == "succeeded" and first["report-flaky"]["status"] == "failed"
    asked = fake.count

    flaky_marker.unlink()
    retried = await http.post(f"/projects/{project_id}/retry", headers=auth)
    assert retried.status_code == 202 and retried.json()["run"] == 3, retried.text
    ready = await run_ends(http, auth, project_id, 3)
    assert ready["status"] == "ready", ready
    assert fake.count == asked  # the change's plan as it was: no model request
    # On run 1's main, as the change was: its diff holds the change's files alone.
    assert ready["base_commit"] == run1["head_commit"]
    second = await tasks_of(http, auth, project_id, 3)
    assert set(second) == {"csv", "report-flaky"}  # the change's tasks, never the first brief's "api"
    assert second["csv"]["attempts"] == 0 and second["csv"]["commit_sha"] == first["csv"]["commit_sha"]
    assert second["report-flaky"]["status"] == "succeeded"
    kept = await http.get(f"/projects/{project_id}/events", params={"type": "tasks_kept", "run": 3}, headers=auth)
    assert [e["payload"] for e in kept.json()["events"]] == [{"run": 2, "tasks": ["csv"]}]
    diff = await http.get(f"/projects/{project_id}/runs/3/diff", headers=auth)
    changed = sorted(line.split(" b/")[1] for line in diff.text.splitlines() if line.startswith("diff --git "))
    assert changed == [
        "changes/csv/NOTES.md",
        "changes/csv/csv.py",
        "changes/report/NOTES.md",
        "changes/report/report_flaky.py",
    ]


async def test_a_change_cancelled_before_its_review_is_planned_again_from_the_change(
    http,
    worker,
    make_key,
    fake: FakeLlm,
):
    auth = {"X-API-Key": make_key().key}
    project_id = await ready_project(http, auth, fake, require_approval=True)
    started = await http.post(f"/projects/{project_id}/runs", json={"prompt": "Add CSV export"}, headers=auth)
    assert started.status_code == 202, started.text
    await wait_for_status(http, project_id, auth, "awaiting_approval")
    assert (await http.post(f"/projects/{project_id}/cancel", headers=auth)).status_code == 200
    assert (await run_ends(http, auth, project_id, 2))["status"] == "cancelled"
    planned_before = len(change_requests(fake))

    retried = await http.post(f"/projects/{project_id}/retry", headers=auth)
    assert retried.status_code == 202 and retried.json()["run"] == 3, retried.text
    await wait_for_status(http, project_id, auth, "awaiting_approval")
    # The model was asked about the change again (clarify, spec, plan), with the change as sent.
    again = change_requests(fake)[planned_before:]
    assert len(again) == 3 and all(d["change_request"]["text"] == "Add CSV export" for d in again)
    reviewed = (await http.get(f"/projects/{project_id}/plan", headers=auth)).json()
    assert reviewed["version"] == 3 and [t["id"] for t in reviewed["tasks"]] == ["add-csv-export"]
    assert (await http.post(f"/projects/{project_id}/approve", json={}, headers=auth)).status_code == 200
    ready = await run_ends(http, auth, project_id, 3)
    assert ready["status"] == "ready", ready
    assert set(await tasks_of(http, auth, project_id, 3)) == {"add-csv-export"}
