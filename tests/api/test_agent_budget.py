"""POST /projects/{id}/budget: refused, in the documented shape, before the run is asked
when it cannot apply: a project not in agent mode or ended (409), a body that is no budget
(400), a budget what was spent already reaches (400, naming the limit), another owner's
project (404), a key without projects:approve (403)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from store.models import Project
from store.projects import Projection, apply_projection
from store.usage import NewUsage, record_usage
from tests.api.agent_support import MODEL, agent_row

__all__ = ["agent_row"]

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def spend(db, project_id: int, tokens: int, cost: float | None) -> None:
    usage = NewUsage(
        key="r1",
        project_id=project_id,
        run_number=1,
        phase="spec",
        task_id=None,
        number=1,
        model=MODEL,
        input_tokens=tokens,
        output_tokens=0,
        cost_usd=cost,
    )
    with db.session(write_lock=True) as session:
        record_usage(session, usage=usage, at=NOW)


def stored_budget(db, project_id: int) -> dict | None:
    with db.session() as session:
        row = session.get(Project, project_id)
        assert row is not None
        return None if row.agent is None else row.agent["budget"]


async def test_a_template_mode_project_has_no_budget(http, project_row):
    key, project_id = project_row()
    response = await http.post(
        f"/projects/{project_id}/budget", json={"max_total_tokens": 10}, headers={"X-API-Key": key.key}
    )
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_state" and "agent mode" in error["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"max_total_tokens": None, "max_cost_usd": None}, "body"),
        ({"max_total_tokens": 0}, "max_total_tokens"),
        ({"max_total_tokens": -5}, "max_total_tokens"),
        ({"max_total_tokens": 2.5}, "max_total_tokens"),
        ({"max_total_tokens": "100"}, "max_total_tokens"),
        ({"max_total_tokens": True}, "max_total_tokens"),
        ({"max_total_tokens": 10**13}, "max_total_tokens"),
        ({"max_cost_usd": 0}, "max_cost_usd"),
        ({"max_cost_usd": -1.0}, "max_cost_usd"),
        ({"max_cost_usd": "1.0"}, "max_cost_usd"),
        ({"max_total_tokens": 10, "budget": {"max_total_tokens": 10}}, "budget"),
    ],
)
async def test_a_body_that_is_no_budget_is_refused_naming_the_field(http, agent_row, body, field):
    key, project_id = agent_row()
    response = await http.post(f"/projects/{project_id}/budget", json=body, headers={"X-API-Key": key.key})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["details"]["field"]) == ("invalid_payload", field), error


async def test_bodies_that_are_no_json_object(http, agent_row):
    key, project_id = agent_row()
    auth = {"X-API-Key": key.key, "Content-Type": "application/json"}
    for raw in (b"", b"[]", b"12", b"{", b'{"max_cost_usd": NaN}'):
        response = await http.post(f"/projects/{project_id}/budget", content=raw, headers=auth)
        assert response.status_code in (400, 422), (raw, response.text)
        assert response.json()["error"]["code"] in ("invalid_payload", "invalid_parameters")


async def test_a_budget_already_spent_is_refused_naming_the_limit(http, db, agent_row):
    key, project_id = agent_row(budget={"max_total_tokens": 1000})
    spend(db, project_id, 1500, 0.75)
    auth = {"X-API-Key": key.key}
    response = await http.post(f"/projects/{project_id}/budget", json={"max_total_tokens": 1500}, headers=auth)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["details"]["field"] == "max_total_tokens" and "1500 tokens" in error["message"]
    response = await http.post(f"/projects/{project_id}/budget", json={"max_cost_usd": 0.5}, headers=auth)
    assert response.json()["error"]["details"]["field"] == "max_cost_usd", response.text
    # Nothing changed.
    assert stored_budget(db, project_id) == {
        "max_total_tokens": 1000,
        "max_cost_usd": None,
        "max_cost_usd_per_task": None,
    }


async def test_unpriced_requests_exhaust_any_cost_budget(http, db, agent_row):
    key, project_id = agent_row()
    spend(db, project_id, 10, None)
    response = await http.post(
        f"/projects/{project_id}/budget", json={"max_cost_usd": 100.0}, headers={"X-API-Key": key.key}
    )
    assert response.status_code == 400, response.text
    assert "FORGEFLOW_LLM_PRICES" in response.json()["error"]["message"]


@pytest.mark.parametrize("status", ["ready", "failed", "cancelled"])
async def test_an_ended_project_keeps_its_budget(http, db, agent_row, status):
    key, project_id = agent_row(budget={"max_total_tokens": 1000})
    with db.session(write_lock=True) as session:
        apply_projection(
            session, projection=Projection(project_id=project_id, seq=5, status=status, phase=status, at=NOW)
        )
    response = await http.post(
        f"/projects/{project_id}/budget", json={"max_total_tokens": 9000}, headers={"X-API-Key": key.key}
    )
    assert response.status_code == 409, response.text
    assert response.json()["error"]["details"]["current_status"] == status
    assert stored_budget(db, project_id) == {
        "max_total_tokens": 1000,
        "max_cost_usd": None,
        "max_cost_usd_per_task": None,
    }


async def test_a_project_whose_run_is_gone_is_refused_and_keeps_its_budget(http, db, agent_row):
    # Queued on record, but no workflow: the run cannot take the budget, so nothing is stored.
    key, project_id = agent_row(budget={"max_total_tokens": 1000})
    response = await http.post(
        f"/projects/{project_id}/budget", json={"max_total_tokens": 9000}, headers={"X-API-Key": key.key}
    )
    assert response.status_code == 409, response.text
    assert stored_budget(db, project_id) == {
        "max_total_tokens": 1000,
        "max_cost_usd": None,
        "max_cost_usd_per_task": None,
    }


async def test_another_owner_and_other_scopes(http, make_key, agent_row):
    owner, project_id = agent_row()
    body = {"max_total_tokens": 10}
    stranger = await http.post(f"/projects/{project_id}/budget", json=body, headers={"X-API-Key": make_key().key})
    assert stranger.status_code == 404 and stranger.json()["error"]["code"] == "project_not_found"
    reader = make_key(owner.owner, scopes=["projects:read", "projects:create", "projects:cancel"])
    refused = await http.post(f"/projects/{project_id}/budget", json=body, headers={"X-API-Key": reader.key})
    assert refused.status_code == 403
    assert refused.json()["error"]["details"]["required_scope"] == "projects:approve"
