"""GET /usage and GET /plan over real HTTP, from rows the store's own functions wrote: the
totals and every breakdown, a cost that is unknown shown as null (never 0), zeros for a
project that made no request; the plan of the newest spec version that holds one."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from store.lifecycle import decide_spec, record_spec_version
from store.projects import Projection, apply_projection
from store.usage import NewUsage, record_usage
from tests.api.agent_support import agent_row

__all__ = ["agent_row"]

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ZEROS = {
    "requests": 0,
    "input_tokens": 0,
    "output_tokens": 0,
    "total_tokens": 0,
    "cost_usd": 0.0,
    "priced_cost_usd": 0.0,
    "unpriced_requests": 0,
}


def record(db, project_id: int, key: str, **fields) -> None:
    values = {
        "key": key,
        "project_id": project_id,
        "run_number": 1,
        "phase": "spec",
        "task_id": None,
        "number": 1,
        "model": "test-model",
        "input_tokens": 100,
        "output_tokens": 20,
        "cost_usd": 0.25,
        **fields,
    }
    with db.session(write_lock=True) as session:
        record_usage(session, usage=NewUsage(**values), at=NOW)


def counts(requests, input_tokens, output_tokens, cost, priced, unpriced=0) -> dict:
    return {
        "requests": requests,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "cost_usd": cost,
        "priced_cost_usd": priced,
        "unpriced_requests": unpriced,
    }


async def test_usage_totals_and_breakdowns(http, db, agent_row):
    key, project_id = agent_row(budget={"max_total_tokens": 10_000})
    record(db, project_id, "r1", phase="clarify")
    record(db, project_id, "r2", phase="spec", input_tokens=200, output_tokens=50)
    record(db, project_id, "r3", phase="plan", run_number=2, cost_usd=0.5)
    record(db, project_id, "r4", phase="plan", run_number=2, task_id="api", model="mystery", cost_usd=None)
    record(db, project_id, "r1", phase="clarify")  # a retried recording: counted once
    response = await http.get(f"/projects/{project_id}/usage", headers={"X-API-Key": key.key})
    assert response.status_code == 200, response.text
    usage = response.json()
    # One request could not be priced: the cost is unknown, and the known part is given.
    assert {k: usage[k] for k in ZEROS} == counts(4, 500, 110, None, 1.0, unpriced=1)
    assert usage["unpriced_models"] == ["mystery"]
    assert usage["budget"] == {"max_total_tokens": 10_000, "max_cost_usd": None, "max_cost_usd_per_task": None}
    # Phases in the order they run.
    assert usage["by_phase"] == [
        {"phase": "clarify", **counts(1, 100, 20, 0.25, 0.25)},
        {"phase": "spec", **counts(1, 200, 50, 0.25, 0.25)},
        {"phase": "plan", **counts(2, 200, 40, None, 0.5, unpriced=1)},
    ]
    assert usage["by_run"] == [
        {"run": 1, **counts(2, 300, 70, 0.5, 0.5)},
        {"run": 2, **counts(2, 200, 40, None, 0.5, 1)},
    ]
    assert usage["by_task"] == [{"task_id": "api", **counts(1, 100, 20, None, 0.0, unpriced=1)}]


async def test_a_project_without_usage_answers_zeros(http, project_row, agent_row):
    key, project_id = project_row()  # template mode: no budget either
    usage = (await http.get(f"/projects/{project_id}/usage", headers={"X-API-Key": key.key})).json()
    assert usage == {**ZEROS, "unpriced_models": [], "budget": None, "by_phase": [], "by_run": [], "by_task": []}
    key, project_id = agent_row()
    usage = (await http.get(f"/projects/{project_id}/usage", headers={"X-API-Key": key.key})).json()
    assert {k: usage[k] for k in ZEROS} == ZEROS
    assert usage["budget"] == {"max_total_tokens": None, "max_cost_usd": None, "max_cost_usd_per_task": None}


@pytest.mark.parametrize("route", ["usage", "plan"])
async def test_another_owners_project_is_not_found(http, make_key, agent_row, route):
    _, project_id = agent_row()
    stranger = {"X-API-Key": make_key().key}
    response = await http.get(f"/projects/{project_id}/{route}", headers=stranger)
    assert response.status_code == 404 and response.json()["error"]["code"] == "project_not_found"
    writer = {"X-API-Key": make_key(scopes=["projects:create"]).key}
    assert (await http.get(f"/projects/{project_id}/{route}", headers=writer)).status_code == 403


PLAN = {
    "tasks": [
        {
            "id": "core",
            "title": "The core",
            "instructions": "Write the gadget core.",
            "dependencies": [],
            "path_scope": ["src/core/**"],
            "expected_outputs": ["src/core/gadget.py"],
        },
        {
            "id": "cli",
            "title": "The CLI",
            "instructions": "Wrap the core in a CLI.",
            "dependencies": ["core"],
            "path_scope": ["src/cli/**"],
            "expected_outputs": [],
        },
    ]
}
DOCUMENTS = {name: f"# {name}\n" for name in ("SPEC.md", "ACCEPTANCE.md", "ROUTES.md", "DATA.md")}
TASKS_MD = "# Tasks\n\n- [ ] core: The core\n- [ ] cli: The CLI (after core)\n"


async def test_the_plan_of_the_newest_spec_version_that_holds_one(http, db, agent_row):
    key, project_id = agent_row()
    auth = {"X-API-Key": key.key}
    missing = await http.get(f"/projects/{project_id}/plan", headers=auth)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "plan_not_found"
    with db.session(write_lock=True) as session:
        # Version 1 without a plan yet (the spec phase), then with one.
        record_spec_version(
            session, project_id=project_id, version=1, documents=DOCUMENTS, answers={}, feedback=[], at=NOW
        )
    assert (await http.get(f"/projects/{project_id}/plan", headers=auth)).status_code == 404
    planned = {**DOCUMENTS, "plan.json": json.dumps(PLAN), "tasks.md": TASKS_MD}
    with db.session(write_lock=True) as session:
        record_spec_version(
            session, project_id=project_id, version=2, documents=planned, answers={}, feedback=["add a CLI"], at=NOW
        )
        decide_spec(session, project_id=project_id, version=2, approved_at=NOW, notes="")
        # A version being rewritten after feedback: no plan yet; the last one is still served.
        record_spec_version(
            session, project_id=project_id, version=3, documents=DOCUMENTS, answers={}, feedback=["more"], at=NOW
        )
    response = await http.get(f"/projects/{project_id}/plan", headers=auth)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "version": 2,
        "approved_at": "2026-01-01T00:00:00Z",
        "tasks": PLAN["tasks"],
        "tasks_md": TASKS_MD,
    }


async def test_a_template_mode_project_has_no_plan(http, project_row):
    key, project_id = project_row()
    response = await http.get(f"/projects/{project_id}/plan", headers={"X-API-Key": key.key})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "plan_not_found"


async def test_awaiting_budget_is_a_status_lists_filter_and_count(http, db, agent_row):
    key, project_id = agent_row()
    with db.session(write_lock=True) as session:
        stopped = Projection(project_id=project_id, seq=4, status="awaiting_budget", phase="awaiting_budget", at=NOW)
        apply_projection(session, projection=stopped)
    auth = {"X-API-Key": key.key}
    listed = await http.get("/projects", params={"status": "awaiting_budget", "include": "status_counts"}, headers=auth)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert [p["id"] for p in body["projects"]] == [project_id]
    assert body["projects"][0]["phase"] == "awaiting_budget"
    assert body["status_counts"]["awaiting_budget"] == 1
    status = (await http.get(f"/projects/{project_id}/status", headers=auth)).json()
    assert status["status"] == "awaiting_budget"
