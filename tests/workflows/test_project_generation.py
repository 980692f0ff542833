"""ProjectGenerationWorkflow on a real Temporal dev server, with real activities,
the fixture template and a real database projection."""

from __future__ import annotations

import asyncio
import io
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from forgeflow.worker import build_activities, build_worker
from store.artifacts import LocalArtifactStore
from store.lifecycle import get_run, list_events, list_spec_versions, list_tasks
from store.projects import get_project
from workflows import workflow_id_for
from workflows.project_generation import ProjectGenerationWorkflow
from workflows.types import (
    RUN_TASK,
    AnswersUpdate,
    ApprovalUpdate,
    Phase,
    ProjectGenerationInput,
    ProjectStatus,
    RegenerateUpdate,
    TaskInput,
)

TEMPLATE = "widget-lib"


async def start(client, settings, project_id, owner, **overrides):
    workflow_input = ProjectGenerationInput(
        **{
            "project_id": project_id,
            "owner": owner,
            "name": "Widget Lib",
            "slug": "widget_lib",
            "template": TEMPLATE,
            "answers": {"project_name": "Widget Lib"},
            **overrides,
        }
    )
    return await client.start_workflow(
        ProjectGenerationWorkflow.run,
        workflow_input,
        id=workflow_id_for(project_id),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def wait_for_phase(handle, phase: Phase, timeout: float = 20):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        snapshot = await handle.query(ProjectGenerationWorkflow.status)
        if snapshot.phase == phase:
            return snapshot
        assert asyncio.get_running_loop().time() < deadline, f"stuck in {snapshot.phase}"
        await asyncio.sleep(0.05)


async def test_generation_without_gates_ends_ready_with_a_zip(client, worker, settings, db, project_row):
    key, project_id = project_row()
    handle = await start(client, settings, project_id, key.owner)
    result = await handle.result()
    assert result.status == ProjectStatus.READY
    with db.session() as session:
        row = get_project(session, owner_id=key.owner_id, project_id=project_id)
    assert row.status == "ready" and row.phase == "done" and row.artifact_ready
    assert row.started_at is not None and row.finished_at >= row.started_at
    assert row.artifact_sha256 == result.artifact.sha256
    data = LocalArtifactStore(settings.artifact_dir).path_for(row.artifact_key).read_bytes()
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "widget_lib/src/widget_lib/cli.py" in names  # use_cli defaults to "y"
    assert "widget_lib/.forgeflow/manifest.json" in names
    # One activity per task, visible in the history with its summary.
    history = await handle.fetch_history()
    summaries = [
        e.user_metadata.summary.data.decode()
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes") and e.HasField("user_metadata")
    ]
    assert any("task 1/" in s for s in summaries), summaries
    # The Web UI's query tab: the run's own view of its tasks and spec.
    tasks = await handle.query(ProjectGenerationWorkflow.tasks)
    assert tasks and set(tasks.values()) == {"succeeded"}
    spec = await handle.query(ProjectGenerationWorkflow.spec)
    assert spec.version == 1 and spec.documents_key.endswith("/spec/v1") and not spec.awaiting_review


async def test_every_phase_is_on_record_in_order_with_fewer_writes(client, worker, settings, db, project_row):
    key, project_id = project_row()
    handle = await start(client, settings, project_id, key.owner)
    await handle.result()
    with db.session() as session:
        events = list_events(session, project_id=project_id, after=0, limit=1000)
    phases = [e.payload["phase"] for e in events if e.type == "status_changed"]
    assert phases == ["clarify", "spec", "decompose", "tasks", "verify", "export", "done"]
    kinds = [e.type for e in events if e.task_id is None]
    assert kinds.index("spec_version_created") < kinds.index("plan_created") < kinds.index("verification_completed")
    assert kinds.index("verification_completed") < kinds.index("export_completed") < kinds.index("project_ready")
    # The writes the activities completed carry what the run would have written itself.
    by_type = {e.type: e for e in events if e.task_id is None}
    ready = await handle.result()
    with db.session() as session:
        run = get_run(session, project_id=project_id, number=1)
        assert run is not None and run.verification["ok"] is True
        tasks = list_tasks(session, run_id=run.id)
        project = get_project(session, project_id=project_id, owner_id=key.owner_id)
        assert project is not None and project.status == "ready"
        assert project.artifact_sha256 == ready.artifact.sha256
        assert [v.version for v in list_spec_versions(session, project_id=project_id)] == [1]
    assert by_type["plan_created"].payload["tasks"] == len(tasks) > 0
    assert {t.status for t in tasks} == {"succeeded"}
    assert by_type["verification_completed"].payload["ok"] is True
    assert by_type["export_completed"].payload["sha256"] == ready.artifact.sha256
    assert len(by_type["export_completed"].payload["main_sha"]) == 40
    assert by_type["project_ready"].payload == {"sha256": ready.artifact.sha256, "size": ready.artifact.size}
    # The run's own events are stored in the order it numbered them, each number once.
    numbers = [int(e.dedup_key.rsplit(":", 1)[1]) for e in events if e.task_id is None]
    assert numbers == sorted(set(numbers))
    # Every write is carried by an activity that had the data anyway (prepare: the tasks
    # phase; verify_and_export: verify, then ready): the run's only local activity left is
    # prepare itself, where there was one a phase.
    history = await handle.fetch_history()
    activity_types = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert "verify_and_export" in activity_types and "verify" not in activity_types
    markers = [e for e in history.events if e.HasField("marker_recorded_event_attributes")]
    local_activities = [m for m in markers if m.marker_recorded_event_attributes.marker_name == "core_local_activity"]
    assert len(local_activities) == 1


async def test_a_failed_verification_fails_the_run_and_nothing_is_ready(client, settings, db, project_row):
    """The ready write the run hands to verify_and_export is stored only if the export was;
    a failed check leaves the project failed, with the verification on record."""
    trusted = settings.model_copy(update={"trusted_templates": "failing-check-lib"})
    key, project_id = project_row()
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with build_worker(client, trusted, db=db, executor=executor):
            handle = await start(
                client,
                settings,
                project_id,
                key.owner,
                template="failing-check-lib",
                answers={"project_name": "Failing"},
            )
            with pytest.raises(WorkflowFailureError):
                await handle.result()
    with db.session() as session:
        project = get_project(session, project_id=project_id, owner_id=key.owner_id)
        assert project is not None and project.status == "failed" and project.artifact_key is None
        assert project.error_message.startswith("Verification failed")
        assert "the check says no" in project.error_message
        run = get_run(session, project_id=project_id, number=1)
        assert run is not None and run.verification["ok"] is False
        kinds = [e.type for e in list_events(session, project_id=project_id, after=0, limit=1000)]
    assert "verification_completed" in kinds and "project_failed" in kinds
    assert "export_completed" not in kinds and "project_ready" not in kinds


async def test_a_second_start_attaches_to_the_same_run(client, worker, settings, project_row):
    key, project_id = project_row()
    first = await start(client, settings, project_id, key.owner, require_approval=True)
    second = await start(client, settings, project_id, key.owner, require_approval=True)
    assert first.result_run_id == second.result_run_id
    await first.cancel()


async def test_approval_gate_waits_then_continues(client, worker, settings, db, project_row):
    key, project_id = project_row()
    handle = await start(client, settings, project_id, key.owner, require_approval=True)
    snapshot = await wait_for_phase(handle, Phase.AWAITING_APPROVAL)
    assert snapshot.status == ProjectStatus.AWAITING_APPROVAL and snapshot.spec_version == 1
    with db.session() as session:
        assert get_project(session, owner_id=key.owner_id, project_id=project_id).status == "awaiting_approval"
    # Nothing moves while it waits.
    await asyncio.sleep(0.5)
    assert (await handle.query(ProjectGenerationWorkflow.status)).phase == Phase.AWAITING_APPROVAL

    await handle.execute_update(ProjectGenerationWorkflow.regenerate, RegenerateUpdate(feedback="More tests"))
    snapshot = await wait_for_phase(handle, Phase.AWAITING_APPROVAL)
    assert snapshot.spec_version == 2

    await handle.execute_update(ProjectGenerationWorkflow.approve, ApprovalUpdate(notes="ship it"))
    assert (await handle.result()).status == ProjectStatus.READY
    # A second approval is refused (by the validator while running, by the server once
    # closed): it never starts a second build.
    with pytest.raises((WorkflowUpdateFailedError, RPCError)):
        await handle.execute_update(ProjectGenerationWorkflow.approve, ApprovalUpdate())


async def test_updates_in_the_wrong_phase_are_rejected(client, worker, settings, project_row):
    key, project_id = project_row()
    handle = await start(client, settings, project_id, key.owner, require_approval=True)
    await wait_for_phase(handle, Phase.AWAITING_APPROVAL)
    with pytest.raises(WorkflowUpdateFailedError) as raised:
        await handle.execute_update(ProjectGenerationWorkflow.answers, AnswersUpdate(answers={"x": 1}))
    assert raised.value.cause.type == "InvalidState"
    assert raised.value.cause.details[0]["current_status"] == "awaiting_approval"
    await handle.cancel()


async def test_reject_fails_the_project_with_the_notes(client, worker, settings, db, project_row):
    key, project_id = project_row()
    handle = await start(client, settings, project_id, key.owner, require_approval=True)
    await wait_for_phase(handle, Phase.AWAITING_APPROVAL)
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(ProjectGenerationWorkflow.regenerate, RegenerateUpdate(feedback="  "))
    await handle.execute_update(ProjectGenerationWorkflow.reject, ApprovalUpdate(notes="Wrong stack"))
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    with db.session() as session:
        row = get_project(session, owner_id=key.owner_id, project_id=project_id)
    assert (row.status, row.error_message) == ("failed", "Wrong stack")


async def test_approve_signal_from_a_script(client, worker, settings, project_row):
    key, project_id = project_row()
    handle = await start(client, settings, project_id, key.owner, require_approval=True)
    # Too early: the signal is validated like the update, logged and dropped.
    await handle.signal("approve", ApprovalUpdate())
    await wait_for_phase(handle, Phase.AWAITING_APPROVAL)
    await handle.signal("approve", ApprovalUpdate())
    assert (await handle.result()).status == ProjectStatus.READY


async def test_worker_restart_mid_generation_still_ends_ready(client, settings, db, project_row):
    """The first worker dies while a task runs; a new worker picks the run up."""
    key, project_id = project_row()
    task_started = asyncio.Event()

    @activity.defn(name=RUN_TASK)
    async def stuck_task(input: TaskInput) -> None:
        task_started.set()
        while True:
            activity.heartbeat()
            await asyncio.sleep(0.1)

    with ThreadPoolExecutor(8) as executor:
        real = [a for a in build_activities(settings, db) if a.__name__ != "run_task"]
        first = build_worker(client, settings, db=db, executor=executor, activities=[*real, stuck_task])
        async with first:
            handle = await start(client, settings, project_id, key.owner)
            await asyncio.wait_for(task_started.wait(), 20)
        # The first worker is gone mid-task; a fresh one finishes the run.
        async with build_worker(client, settings, db=db, executor=executor):
            result = await asyncio.wait_for(handle.result(), 60)
    assert result.status == ProjectStatus.READY
    history = await handle.fetch_history()
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert max(attempts) >= 2, "the interrupted task was retried"
    with db.session() as session:
        assert get_project(session, owner_id=key.owner_id, project_id=project_id).status == "ready"


async def test_same_template_and_answers_give_the_same_zip(client, worker, settings, project_row):
    digests = []
    for _ in range(2):
        key, project_id = project_row()
        result = await (await start(client, settings, project_id, key.owner)).result()
        digests.append(result.artifact.sha256)
    assert digests[0] == digests[1]


async def test_a_cyclic_template_fails_with_a_clear_error(client, worker, settings, db, project_row):
    key, project_id = project_row()
    workflow_input = ProjectGenerationInput(
        project_id=project_id, owner=key.owner, name="Cyclic", slug="cyclic", template="cyclic-lib", answers={}
    )
    handle = await client.start_workflow(
        ProjectGenerationWorkflow.run, workflow_input, id=workflow_id_for(project_id), task_queue=settings.task_queue
    )
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    with db.session() as session:
        row = get_project(session, owner_id=key.owner_id, project_id=project_id)
    assert row.status == "failed"
    assert row.error_message == "the task graph has a cycle among: a, b"
