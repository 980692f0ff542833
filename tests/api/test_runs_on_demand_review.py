"""A run on demand may ask for a review of its own build (``"review": "diff"``) whatever the
project was created with: the change, built and verified, waits at ``awaiting_review`` with
its diff served, and is exported once approved. Real HTTP, Temporal, git and sandbox; the
fake model and the ``command`` coding agent (agents/fake_coder.py) stand in for the outside."""

from __future__ import annotations

from agents.fake_llm import FakeLlm
from tests.api.test_lifecycle import wait_for_status
from tests.api.test_runs_on_demand import ready_project, settings  # noqa: F401 (fixtures)
from tests.api.test_template_updates import run_ends


async def test_a_change_asks_for_a_review_of_its_build_alone(http, worker, make_key, fake: FakeLlm):
    auth = {"X-API-Key": make_key().key}
    project_id = await ready_project(http, auth, fake)  # created with no review of its build
    run1 = (await http.get(f"/projects/{project_id}/runs/1", headers=auth)).json()

    for bad in ("yes", True, ["diff"]):
        refused = await http.post(f"/projects/{project_id}/runs", json={"prompt": "x", "review": bad}, headers=auth)
        assert refused.status_code == 400 and refused.json()["error"]["details"]["field"] == "review", refused.text
    body = {"prompt": "Add CSV export", "review": "diff"}
    started = await http.post(f"/projects/{project_id}/runs", json=body, headers=auth)
    assert started.status_code == 202 and started.json()["run"] == 2, started.text
    waiting = await wait_for_status(http, project_id, auth, "awaiting_approval", timeout=120)
    assert waiting["phase"] == "awaiting_review", waiting
    # The build waits with its diff: the change alone, on run 1's main.
    diff = await http.get(f"/projects/{project_id}/runs/2/diff", headers=auth)
    assert diff.status_code == 200 and diff.headers["x-base-commit"] == run1["head_commit"]
    assert "+TASK = 'add-csv-export'" in diff.text and "app/api.py" not in diff.text
    approved = await http.post(f"/projects/{project_id}/approve", json={"version": 1}, headers=auth)
    assert approved.status_code == 200, approved.text
    ready = await run_ends(http, auth, project_id, 2)
    assert ready["status"] == "ready" and ready["base_commit"] == run1["head_commit"], ready
    asked = await http.get(f"/projects/{project_id}/events", params={"type": "change_requested"}, headers=auth)
    assert [e["payload"]["review"] for e in asked.json()["events"]] == ["diff"]
    # The project's own setting is unchanged: the next change exports once verified.
    third = await http.post(f"/projects/{project_id}/runs", json={"prompt": "Add a PDF export"}, headers=auth)
    assert third.status_code == 202, third.text
    assert (await run_ends(http, auth, project_id, 3))["status"] == "ready"
