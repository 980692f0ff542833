"""The approval gate without a worker, twice over, and never answered."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from forgeflow.settings import Settings
from forgeflow.worker import build_worker
from store.db import Database
from store.lifecycle import list_events
from store.projects import create_project, get_project
from tests.reliability.harness import TEMPLATE_ID, Api, assert_event_log_sound, make_api_key, write_fanout_template
from tests.support import tool_path
from workflows import workflow_id_for
from workflows.project_generation import ProjectGenerationWorkflow
from workflows.types import SEARCH_ATTRIBUTES, Phase, ProjectGenerationInput


async def test_an_approval_while_no_worker_runs_is_queued_and_applied_once(make_stack, sqlite_url):
    key = make_api_key(sqlite_url)
    stack = make_stack(sqlite_url, modules=5)
    await stack.start_temporal()
    stack.start_worker()
    await stack.start_api()
    async with Api(stack, key.key) as api:
        project_id = (await api.create(require_approval=True))["id"]
        await api.wait_status(project_id, "awaiting_approval")
        assert stack.worker is not None
        stack.worker.kill(signal.SIGINT)  # stopped as an operator would; test_worker_crash kills one

        # No worker takes the update within FORGEFLOW_UPDATE_TIMEOUT: it waits as a signal.
        first = await api.http.post(f"/projects/{project_id}/approve", json={"notes": "first"})
        assert first.status_code == 200, first.text
        answer = first.json()
        assert (answer["id"], answer["status"], answer["queued"]) == (project_id, "awaiting_approval", True)
        # A second one is queued as well (nothing can judge it while no worker runs) ...
        second = await api.http.post(f"/projects/{project_id}/approve", json={"notes": "second"})
        assert second.status_code == 200 and second.json()["queued"] is True, second.text
        assert (await api.project(project_id))["status"] == "awaiting_approval"

        # ... and ignored once a worker applies the first.
        stack.start_worker()
        await api.wait_status(project_id, "ready")
        late = await api.http.post(f"/projects/{project_id}/approve", json={"notes": "late"})
        assert late.status_code == 409, late.text
        assert late.json()["error"]["code"] == "invalid_state"

        approvals = await api.events(project_id, type="spec_approved")
        assert [e["payload"]["notes"] for e in approvals] == ["first"]
        runs = (await api.http.get(f"/projects/{project_id}/runs")).json()["runs"]
        assert len(runs) == 1, runs
        tasks = await api.tasks(project_id)
        assert_event_log_sound(await api.events(project_id), [t["id"] for t in tasks])


async def test_an_approval_that_never_comes_fails_the_run_after_the_timeout(tmp_path):
    """On Temporal's time-skipping test server: a week passes in a moment."""
    database_url = f"sqlite:///{tmp_path / 'forgeflow.db'}"
    key = make_api_key(database_url)
    write_fanout_template(tmp_path / "templates", modules=3)
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        task_queue="approval-timeout",
        template_path=str(tmp_path / "templates"),
        approval_timeout=timedelta(days=7),
        secret_key=Fernet.generate_key().decode(),
    )
    db = Database(database_url)
    with db.session(write_lock=True) as session:
        project_id = create_project(
            session,
            owner_id=key.owner_id,
            quota=10,
            name="Fanout",
            slug="fanout",
            description="",
            template=TEMPLATE_ID,
            input_payload={"project_name": "Fanout", "template": TEMPLATE_ID, "require_approval": True},
            require_approval=True,
        ).id
    workflow_input = ProjectGenerationInput(
        project_id=project_id,
        owner=key.owner,
        name="Fanout",
        slug="fanout",
        template=TEMPLATE_ID,
        answers={"project_name": "Fanout"},
        require_approval=True,
        approval_timeout_seconds=settings.approval_timeout.total_seconds(),
        owner_id=key.owner_id,
    )
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=tool_path("temporal-test-server"), data_converter=pydantic_data_converter
    )
    try:
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={key.name: key.indexed_value_type for key in SEARCH_ATTRIBUTES},
            )
        )
        with ThreadPoolExecutor(max_workers=4) as executor:
            async with build_worker(env.client, settings, db=db, executor=executor):
                handle = await env.client.start_workflow(
                    ProjectGenerationWorkflow.run,
                    workflow_input,
                    id=workflow_id_for(project_id),
                    task_queue=settings.task_queue,
                )
                started = await env.get_current_time()
                # A minute short of the week it still waits ...
                await env.sleep(timedelta(days=7) - timedelta(minutes=1))
                snapshot = await handle.query(ProjectGenerationWorkflow.status)
                assert snapshot.phase == Phase.AWAITING_APPROVAL
                # ... then it gives up, with a reason a person can read.
                with pytest.raises(WorkflowFailureError) as failed:
                    await handle.result()
                assert await env.get_current_time() - started >= timedelta(days=7)
    finally:
        await env.shutdown()
    assert failed.value.cause.message == "No approval was received within 7 days."
    with db.session() as session:
        project = get_project(session, owner_id=key.owner_id, project_id=project_id)
        assert project is not None
        assert (project.status, project.phase) == ("failed", "failed")
        assert project.error_message == "No approval was received within 7 days."
        failures = list_events(session, project_id=project_id, after=0, limit=100, type="project_failed")
        assert [e.payload for e in failures] == [{"error_message": "No approval was received within 7 days."}]
    db.dispose()
