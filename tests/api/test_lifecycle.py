"""The lifecycle API end to end: questions, review, runs, tasks, events, files, archive."""

from __future__ import annotations

import asyncio

import pytest

from tests.api.test_quickstart import poll_until_done

GATED = {"project_name": "Gadget Kit", "template": "widget-lib", "require_approval": True, "ask_questions": True}


@pytest.fixture
def auth(make_key):
    return {"X-API-Key": make_key().key}


async def wait_for_status(http, project_id, auth, status, timeout=30):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        body = (await http.get(f"/projects/{project_id}", headers=auth)).json()
        if body["status"] == status:
            return body
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.05)


async def test_questions_review_and_build(http, worker, auth):
    created = await http.post("/projects", json=GATED, headers=auth)
    assert created.status_code == 201, created.text
    project_id = created.json()["project"]["id"]
    project = await wait_for_status(http, project_id, auth, "awaiting_answers")
    assert project["phase"] == "awaiting_answers" and project["template"] == "widget-lib"

    questions = (await http.get(f"/projects/{project_id}/questions", headers=auth)).json()["questions"]
    by_id = {q["id"]: q for q in questions}
    assert set(by_id) == {"license", "use_cli", "python_version"}
    assert by_id["license"]["type"] == "single_choice" and by_id["license"]["options"][0] == "MIT"

    bad = await http.post(f"/projects/{project_id}/answers", json={"answers": {"license": "GPL"}}, headers=auth)
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "license"
    # A partial answer is taken (the rest take their defaults): tests/api/test_answers.py.
    early = await http.post(f"/projects/{project_id}/approve", json={}, headers=auth)
    assert early.status_code == 409 and early.json()["error"]["details"]["current_status"] == "awaiting_answers"

    answers = {"license": "Apache-2.0", "use_cli": "n", "python_version": "3.12"}
    ok = await http.post(f"/projects/{project_id}/answers", json={"answers": answers}, headers=auth)
    assert ok.status_code == 200, ok.text
    await wait_for_status(http, project_id, auth, "awaiting_approval")
    spec = (await http.get(f"/projects/{project_id}/spec", headers=auth)).json()
    assert spec["version"] == 1 and spec["approved_at"] is None
    assert set(spec["documents"]) == {"SPEC.md", "ACCEPTANCE.md", "ROUTES.md", "DATA.md"}
    assert "`license`: Apache-2.0" in spec["documents"]["SPEC.md"]

    empty = await http.post(f"/projects/{project_id}/regenerate", json={"feedback": ""}, headers=auth)
    assert empty.status_code == 400
    again = await http.post(f"/projects/{project_id}/regenerate", json={"feedback": "Add a CLI"}, headers=auth)
    assert again.status_code == 200, again.text
    deadline = asyncio.get_running_loop().time() + 20
    while (await http.get(f"/projects/{project_id}/spec", headers=auth)).json()["version"] != 2:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    await wait_for_status(http, project_id, auth, "awaiting_approval")
    versions = (await http.get(f"/projects/{project_id}/spec/versions", headers=auth)).json()["versions"]
    assert [v["version"] for v in versions] == [1, 2] and versions[1]["feedback"] == ["Add a CLI"]

    approved = await http.post(f"/projects/{project_id}/approve", json={"notes": "ship it"}, headers=auth)
    assert approved.status_code == 200, approved.text
    second = await http.post(f"/projects/{project_id}/approve", json={}, headers=auth)
    assert second.status_code == 409
    assert (await poll_until_done(http, project_id, auth))["status"] == "ready"
    assert (await http.get(f"/projects/{project_id}/spec", headers=auth)).json()["approved_at"]

    runs = (await http.get(f"/projects/{project_id}/runs", headers=auth)).json()["runs"]
    assert len(runs) == 1 and runs[0]["status"] == "ready" and runs[0]["trigger"] == "create"
    assert runs[0]["tasks_summary"] == {"succeeded": runs[0]["tasks_summary"]["succeeded"]}
    run = (await http.get(f"/projects/{project_id}/runs/1", headers=auth)).json()
    assert run["spec"]["version"] == 2 and run["verification"]["ok"] is True
    dag = (await http.get(f"/projects/{project_id}/runs/1/dag", headers=auth)).json()
    assert {"from": "root", "to": "src"} in dag["edges"]
    tasks = (await http.get(f"/projects/{project_id}/runs/1/tasks", headers=auth)).json()["tasks"]
    assert [t["sequence"] for t in tasks] == sorted(t["sequence"] for t in tasks)
    src = next(t for t in tasks if t["slug"] == "src")
    assert src["status"] == "succeeded" and src["attempts"] == 1 and len(src["commit_sha"]) == 40
    assert src["branch_name"].startswith("feat/task-") and src["files"] == ["src/gadget_kit/__init__.py"]
    one = (await http.get(f"/projects/{project_id}/runs/1/tasks/src", headers=auth)).json()
    assert one == src
    assert (await http.get(f"/projects/{project_id}/runs/9", headers=auth)).status_code == 404
    assert (await http.get(f"/projects/{project_id}/runs/1/tasks/nope", headers=auth)).status_code == 404


async def test_events_are_ordered_and_typed(http, worker, auth):
    project_id = (await http.post("/projects", json={**GATED, "ask_questions": False}, headers=auth)).json()["project"][
        "id"
    ]
    await wait_for_status(http, project_id, auth, "awaiting_approval")
    await http.post(f"/projects/{project_id}/approve", json={}, headers=auth)
    await poll_until_done(http, project_id, auth)
    events = (await http.get(f"/projects/{project_id}/events", params={"limit": 1000}, headers=auth)).json()
    ids = [e["id"] for e in events["events"]]
    assert ids == list(range(1, len(ids) + 1)) and events["has_next"] is False
    types = [e["type"] for e in events["events"]]
    for expected in (
        "status_changed",
        "spec_version_created",
        "spec_approved",
        "plan_created",
        "task_started",
        "task_files",
        "task_succeeded",
        "verification_completed",
        "export_completed",
        "project_ready",
    ):
        assert expected in types, expected
    assert types.index("spec_approved") < types.index("plan_created") < types.index("project_ready")
    page = (await http.get(f"/projects/{project_id}/events", params={"after": 3, "limit": 2}, headers=auth)).json()
    assert [e["id"] for e in page["events"]] == [4, 5] and page["has_next"] is True
    started = (await http.get(f"/projects/{project_id}/events", params={"type": "task_started"}, headers=auth)).json()
    assert started["events"] and all(e["task_id"] for e in started["events"])
    src = (await http.get(f"/projects/{project_id}/events", params={"task_id": "src"}, headers=auth)).json()
    assert {e["type"] for e in src["events"]} == {"task_started", "task_files", "task_succeeded"}
    bad = await http.get(f"/projects/{project_id}/events", params={"limit": 0}, headers=auth)
    assert bad.status_code == 422


async def test_cancel_then_retry(http, worker, auth):
    project_id = (await http.post("/projects", json={**GATED, "ask_questions": False}, headers=auth)).json()["project"][
        "id"
    ]
    await wait_for_status(http, project_id, auth, "awaiting_approval")
    assert (await http.post(f"/projects/{project_id}/retry", headers=auth)).status_code == 409
    cancelled = await http.post(f"/projects/{project_id}/cancel", headers=auth)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"  # stored by then
    project = await wait_for_status(http, project_id, auth, "cancelled")
    assert project["error_message"] == "Cancelled." and project["finished_at"]
    assert (await http.post(f"/projects/{project_id}/cancel", headers=auth)).status_code == 409
    # Never approved: the retry asks for approval again.
    retried = await http.post(f"/projects/{project_id}/retry", headers=auth)
    assert retried.status_code == 202, retried.text
    await wait_for_status(http, project_id, auth, "awaiting_approval")
    await http.post(f"/projects/{project_id}/approve", json={}, headers=auth)
    assert (await poll_until_done(http, project_id, auth))["status"] == "ready"
    runs = (await http.get(f"/projects/{project_id}/runs", headers=auth)).json()["runs"]
    assert [(r["run_number"], r["status"], r["trigger"]) for r in runs] == [
        (1, "cancelled", "create"),
        (2, "ready", "retry"),
    ]
    project = (await http.get(f"/projects/{project_id}", headers=auth)).json()
    assert project["current_run"] == 2 and project["error_message"] == "" and project["artifact_ready"]


async def test_reject_fails_with_the_notes(http, worker, auth):
    project_id = (await http.post("/projects", json={**GATED, "ask_questions": False}, headers=auth)).json()["project"][
        "id"
    ]
    await wait_for_status(http, project_id, auth, "awaiting_approval")
    rejected = await http.post(f"/projects/{project_id}/reject", json={"notes": "Not this stack"}, headers=auth)
    assert rejected.status_code == 200
    status = await poll_until_done(http, project_id, auth)
    assert (status["status"], status["error_message"]) == ("failed", "Not this stack")


async def test_pause_holds_tasks_until_resume(http, worker, auth):
    project_id = (await http.post("/projects", json={**GATED, "ask_questions": False}, headers=auth)).json()["project"][
        "id"
    ]
    await wait_for_status(http, project_id, auth, "awaiting_approval")
    assert (await http.post(f"/projects/{project_id}/pause", headers=auth)).status_code == 200
    assert (await http.post(f"/projects/{project_id}/pause", headers=auth)).status_code == 409
    await http.post(f"/projects/{project_id}/approve", json={}, headers=auth)
    await asyncio.sleep(1.0)
    project = (await http.get(f"/projects/{project_id}", headers=auth)).json()
    assert project["status"] == "generating" and project["phase"] == "tasks"
    tasks = (await http.get(f"/projects/{project_id}/runs/1/tasks", headers=auth)).json()["tasks"]
    assert tasks and {t["status"] for t in tasks} == {"pending"}
    assert (await http.post(f"/projects/{project_id}/resume", headers=auth)).status_code == 200
    assert (await poll_until_done(http, project_id, auth))["status"] == "ready"
