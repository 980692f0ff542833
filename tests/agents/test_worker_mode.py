"""Agent mode on a worker: only with a provider; the template path is the same either way."""

from __future__ import annotations

from forgeflow.settings import Settings
from forgeflow.worker import build_activities
from store.db import Database
from workflows import workflow_id_for
from workflows.project_generation import ProjectGenerationWorkflow
from workflows.types import ProjectGenerationInput, ProjectStatus

AGENT_ACTIVITIES = {"prepare_agent_phase", "record_agent_request", "store_agent_output"}


def test_without_a_provider_a_worker_has_nothing_of_agent_mode(settings: Settings, db: Database):
    from agents.worker import agent_mode

    assert agent_mode(settings).workflows == [] and agent_mode(settings).plugins == []
    names = {a.__name__ for a in build_activities(settings, db)}
    assert not names & AGENT_ACTIVITIES


def test_with_a_provider_it_has_the_phase_workflow_and_every_request_activity(llm_settings: Settings, db: Database):
    from agents.worker import agent_mode

    mode = agent_mode(llm_settings)
    assert [w.__name__ for w in mode.workflows] == ["AgentPhaseWorkflow"]
    requests = {getattr(a, "__temporal_activity_definition").name for a in mode.activities}
    assert {f"agent__forgeflow_{phase}__model_request" for phase in ("clarify", "spec", "plan")} <= requests
    assert {a.__name__ for a in build_activities(llm_settings, db)} >= AGENT_ACTIVITIES


async def test_the_template_path_runs_as_before_on_an_agent_mode_worker(
    client, agent_worker, llm_settings, project_row
):
    key, project_id = project_row()
    run = ProjectGenerationInput(
        project_id=project_id,
        owner=key.owner,
        name="Widget Lib",
        slug="widget_lib",
        template="widget-lib",
        answers={"project_name": "Widget Lib"},
    )
    handle = await client.start_workflow(
        ProjectGenerationWorkflow.run, run, id=workflow_id_for(project_id), task_queue=llm_settings.task_queue
    )
    assert (await handle.result()).status == ProjectStatus.READY
