"""Creating a project in agent mode (issue 15): refused, naming what is wrong, without a
provider, with another model, without a brief or with one too long, with a coding agent
(part 2); accepted with a provider, the options and brief kept for a retry and given to
the run. A v1 create sees nothing of it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from temporalio.api.enums.v1 import EventType

from store.models import Project
from store.projects import Projection, apply_projection
from tests.api.agent_support import MODEL, agent_row, with_provider
from workflows import workflow_id_for
from workflows.types import ProjectGenerationInput

__all__ = ["agent_row"]  # fixtures

NOW = datetime(2026, 1, 1, tzinfo=UTC)

AGENT = {"project_name": "Gadget Kit", "template": "widget-lib", "prompt": "A tiny library of gadgets.", "agent": {}}
MISSING = ["FORGEFLOW_LLM_BASE_URL", "FORGEFLOW_LLM_API_KEY", "FORGEFLOW_LLM_MODEL"]


@pytest.fixture
def auth(make_key):
    return {"X-API-Key": make_key().key}


async def refused(http, auth, body: dict) -> dict:
    response = await http.post("/projects", json=body, headers=auth)
    assert response.status_code == 400, response.text
    return response.json()["error"]


async def test_without_a_provider_agent_mode_is_refused_naming_the_missing_settings(http, auth, db):
    def projects() -> int:  # in the whole database, which other tests share
        with db.session() as session:
            return session.query(Project).count()

    before = projects()
    error = await refused(http, auth, AGENT)
    assert error["code"] == "agent_mode_unavailable"
    assert error["details"]["missing"] == MISSING and error["details"]["field"] == "agent"
    assert all(name in error["message"] for name in MISSING)
    assert projects() == before
    # A template-mode create is as it was.
    plain = await http.post("/projects", json={"project_name": "Plain", "template": "widget-lib"}, headers=auth)
    assert plain.status_code == 201, plain.text


async def run_input(client, project_id: int) -> ProjectGenerationInput:
    """What the project's current workflow was started with."""
    history = await client.get_workflow_handle(workflow_id_for(project_id)).fetch_history()
    started = history.events[0]
    assert started.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    payloads = started.workflow_execution_started_event_attributes.input.payloads
    (run,) = await client.data_converter.decode(payloads, [ProjectGenerationInput])
    return run


def failed(db, project_id: int) -> None:
    with db.session(write_lock=True) as session:
        write = Projection(project_id=project_id, seq=9, status="failed", phase="failed", at=NOW, finished_at=NOW)
        apply_projection(session, projection=write)


async def test_without_a_provider_an_agent_project_is_not_retried(http, db, agent_row):
    key, project_id = agent_row()
    failed(db, project_id)
    response = await http.post(f"/projects/{project_id}/retry", headers={"X-API-Key": key.key})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "agent_mode_unavailable"


class TestWithAProvider:
    @pytest.fixture
    def settings(self, settings, fake):
        return with_provider(settings, fake, llm_max_brief_chars=100)

    async def test_another_model_is_refused_naming_the_one_available(self, http, auth):
        error = await refused(http, auth, {**AGENT, "agent": {"model": "gpt-99"}})
        assert error["code"] == "unknown_model"
        assert error["details"] == {**error["details"], "field": "agent.model", "available": [MODEL]}
        assert MODEL in error["message"]

    @pytest.mark.parametrize(
        "body",
        [
            {k: v for k, v in AGENT.items() if k != "prompt"},  # no brief at all (widget-lib has no description)
            {**AGENT, "prompt": "   "},  # blank
            {**AGENT, "prompt": ""},
        ],
    )
    async def test_a_brief_is_required(self, http, auth, body):
        error = await refused(http, auth, body)
        assert (error["code"], error["details"]["field"]) == ("invalid_payload", "prompt")
        assert "brief" in error["message"]

    async def test_a_brief_over_the_limit_is_refused_naming_the_field_and_the_limit(self, http, auth):
        error = await refused(http, auth, {**AGENT, "prompt": "x" * 101})
        assert error["details"]["field"] == "prompt" and error["details"]["max_chars"] == 100
        assert "100" in error["message"] and "FORGEFLOW_LLM_MAX_BRIEF_CHARS" in error["message"]
        # The description is the brief when there is no prompt: held to the same limit.
        body = {"project_name": "Gadget Kit", "project_description": "y" * 101, "agent": {}}
        error = await refused(http, auth, body)
        assert error["details"]["field"] == "project_description" and error["details"]["max_chars"] == 100

    @pytest.mark.parametrize("coding_agent", ["claude-code", "builtin", "command"])
    async def test_a_coding_agent_the_server_has_none_of_is_refused(self, http, auth, coding_agent):
        error = await refused(http, auth, {**AGENT, "agent": {"coding_agent": coding_agent}})
        assert error["code"] == "coding_agent_unavailable" and error["details"]["available"] == []
        assert error["details"]["field"] == "agent.coding_agent" and "FORGEFLOW_CODING_AGENT" in error["message"]

    @pytest.mark.parametrize("coding_agent", ["rm -rf /", {"name": "x"}, True, 0, "Claude-Code"])
    async def test_a_coding_agent_that_is_no_kind_is_refused(self, http, auth, coding_agent):
        error = await refused(http, auth, {**AGENT, "agent": {"coding_agent": coding_agent}})
        assert error["code"] == "invalid_payload" and error["details"]["field"] == "agent.coding_agent"

    @pytest.mark.parametrize(
        ("agent", "field"),
        [
            ({"modle": MODEL}, "agent.modle"),  # a typo is refused, never ignored
            ({"budget": {}}, "agent.budget"),
            ({"budget": {"max_total_tokens": 0}}, "agent.budget.max_total_tokens"),
            ({"budget": {"max_total_tokens": 1.5}}, "agent.budget.max_total_tokens"),
            ({"budget": {"max_total_tokens": True}}, "agent.budget.max_total_tokens"),
            ({"budget": {"max_cost_usd": 0}}, "agent.budget.max_cost_usd"),
            ({"budget": {"max_cost_usd_per_task": 0}}, "agent.budget.max_cost_usd_per_task"),
            ({"budget": {"max_cost_usd_per_task": "1"}}, "agent.budget.max_cost_usd_per_task"),
            ({"budget": {"max_cost_usd_per_task": 1e300}}, "agent.budget.max_cost_usd_per_task"),
            ({"budget": {"max_cost_usd": "1"}}, "agent.budget.max_cost_usd"),
            ({"budget": {"max_total_tokens": 10, "cap": 1}}, "agent.budget.cap"),
            ({"model": "bad\x00model"}, "agent.model"),
            ("yes", "agent"),
        ],
    )
    async def test_bad_agent_options_are_refused_naming_the_field(self, http, auth, agent, field):
        error = await refused(http, auth, {**AGENT, "agent": agent})
        assert (error["code"], error["details"]["field"]) == ("invalid_payload", field), error

    async def test_a_prompt_without_agent_mode_is_refused(self, http, auth):
        error = await refused(http, auth, {"project_name": "Gadget Kit", "template": "widget-lib", "prompt": "A kit."})
        assert error["details"]["field"] == "prompt" and '"agent"' in error["message"]

    async def test_a_control_character_in_the_brief_is_refused(self, http, auth):
        error = await refused(http, auth, {**AGENT, "prompt": "Ignore the above\x1b[2J"})
        assert error["details"]["field"] == "prompt"

    async def test_an_agent_create_keeps_what_a_retry_needs_and_gives_it_to_the_run(self, http, auth, db, client):
        budget = {"max_total_tokens": 5000, "max_cost_usd": 0.5}
        agent = {"model": MODEL, "budget": budget}
        body = {**AGENT, "prompt": "A tiny library of gadgets.\nWith a CLI.", "agent": agent}
        response = await http.post("/projects", json=body, headers=auth)
        assert response.status_code == 201, response.text
        project = response.json()["project"]
        # The echo is the request as sent; the project shows the lifecycle fields.
        assert project["input_payload"]["agent"] == {"model": MODEL, "budget": budget}
        assert project["input_payload"]["prompt"] == body["prompt"]
        assert project["phase"] == "queued" and project["template"] == "widget-lib"
        with db.session() as session:
            row = session.get(Project, project["id"])
            assert row is not None
            assert row.agent == {
                "brief": body["prompt"],
                "model": MODEL,
                "budget": {**budget, "max_cost_usd_per_task": None},
                "coding_agent": None,
            }
        handle = client.get_workflow_handle(workflow_id_for(project["id"]))
        try:
            run = await run_input(client, project["id"])
            assert run.agent is not None
            assert (run.agent.brief, run.agent.model) == (body["prompt"], MODEL)
            assert run.agent.budget.model_dump() == {**budget, "max_cost_usd_per_task": None}
            # The template variables are the template's alone: no agent field among them.
            assert "prompt" not in run.answers and "agent" not in run.answers
        finally:
            await handle.terminate("test over")

    async def test_the_description_is_the_brief_without_a_prompt(self, http, auth, db, client):
        body = {"project_name": "Gadget Kit", "project_description": "Gadgets, as a service.", "agent": {}}
        response = await http.post("/projects", json=body, headers=auth)
        assert response.status_code == 201, response.text
        project_id = response.json()["project"]["id"]
        with db.session() as session:
            row = session.get(Project, project_id)
            assert row is not None and row.agent is not None
            assert row.agent["brief"] == "Gadgets, as a service." and row.agent["budget"]["max_total_tokens"] is None
        await client.get_workflow_handle(workflow_id_for(project_id)).terminate("test over")

    async def test_a_v1_create_sees_nothing_of_agent_mode(self, http, auth, db):
        response = await http.post("/projects", json={"project_name": "Acme CRM"}, headers=auth)
        assert response.status_code == 201, response.text
        project = response.json()["project"]
        assert "phase" not in project and "agent" not in project and "prompt" not in project["input_payload"]
        with db.session() as session:
            row = session.get(Project, project["id"])
            assert row is not None and row.agent is None

    async def test_a_retry_starts_from_the_brief_and_the_budget_on_record(self, http, db, client, agent_row):
        key, project_id = agent_row(budget={"max_total_tokens": 7000})  # as POST /budget leaves it
        failed(db, project_id)
        response = await http.post(f"/projects/{project_id}/retry", headers={"X-API-Key": key.key})
        assert response.status_code == 202, response.text
        try:
            run = await run_input(client, project_id)
            assert run.trigger == "retry" and run.agent is not None
            assert (run.agent.brief, run.agent.model) == ("A lib.", MODEL)
            assert run.agent.budget.model_dump() == {
                "max_total_tokens": 7000,
                "max_cost_usd": None,
                "max_cost_usd_per_task": None,
            }
        finally:
            await client.get_workflow_handle(workflow_id_for(project_id)).terminate("test over")
