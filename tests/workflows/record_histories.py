"""Record real workflow histories for the replay tests.

    .venv/bin/python -m tests.workflows.record_histories [NAME ...]

Starts a dev server, a worker and a SQLite database in a temporary directory, drives one
project through each path a run can take, and writes each history as JSON under
tests/workflows/histories/ (only the named ones, if names are given). Re-record only for
a deliberate, versioned change; the replay test exists to catch the accidental ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.schemas import FLAG_FIELDS
from forgeflow.settings import Settings
from forgeflow.worker import build_worker
from store.db import Database
from store.keys import create_key
from store.projects import create_project
from tests.support import tool_path
from workflows import workflow_id_for
from workflows.project_generation import ProjectGenerationWorkflow
from workflows.types import (
    SEARCH_ATTRIBUTES,
    AnswersUpdate,
    ApprovalUpdate,
    Phase,
    ProjectGenerationInput,
    RegenerateUpdate,
)

HISTORIES = Path(__file__).parent / "histories"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "templates"


async def wait_for(handle: WorkflowHandle, phase: Phase, spec_version: int = 0) -> None:
    while True:
        snapshot = await handle.query(ProjectGenerationWorkflow.status)
        if snapshot.phase == phase and snapshot.spec_version >= spec_version:
            return
        await asyncio.sleep(0.05)


async def record(client: Client, db: Database, settings: Settings, only: set[str]) -> None:
    with db.session() as session:
        key = create_key(session, owner_name="recorder", email="r@example.test", project_quota=100)

    async def start(name: str, template: str, answers: dict, **options: object) -> WorkflowHandle:
        with db.session(write_lock=True) as session:
            project = create_project(
                session,
                owner_id=key.owner_id,
                quota=100,
                name=name,
                slug=name,
                description="",
                template=template,
                input_payload=answers,
            )
        workflow_input = ProjectGenerationInput(
            project_id=project.id,
            owner="recorder",
            owner_id=key.owner_id,
            name=name,
            slug=name,
            template=template,
            answers=answers,
            **options,
        )
        return await client.start_workflow(
            ProjectGenerationWorkflow.run,
            workflow_input,
            id=workflow_id_for(project.id),
            task_queue=settings.task_queue,
        )

    async def save(handle: WorkflowHandle, name: str) -> None:
        with contextlib.suppress(Exception):  # failed and cancelled runs are recorded too
            await handle.result()
        history = await handle.fetch_history()
        (HISTORIES / f"{name}.json").write_text(history.to_json())
        print(f"recorded {name}: {len(history.events)} events")

    async def save_slice(name: str, history: str, **options: object) -> None:
        """The first child workflow (a slice of three tasks) of a widget-lib run, once it ended."""
        sliced = await start(name, "widget-lib", {"project_name": "Sliced"}, tasks_per_batch=3, **options)
        await sliced.result()
        await save(client.get_workflow_handle(f"{sliced.id}-run-1-tasks-1"), history)

    def wanted(name: str) -> bool:
        return not only or name in only

    if wanted("batched_tasks"):
        batched = await start("batched", "widget-lib", {"project_name": "Batched"}, tasks_per_batch=2)
        await save(batched, "batched_tasks")
        await save(client.get_workflow_handle(f"{batched.id}-run-1-tasks-1"), "batched_tasks_slice")
    if wanted("task_packs"):
        # One slot: the tasks ready after the first share one activity.
        packed = await start("packed", "widget-lib", {"project_name": "Packed"}, max_parallel_tasks=1)
        await save(packed, "task_packs")
        await save_slice("sliced", "task_packs_slice", max_parallel_tasks=1)
    if wanted("local_engine_steps"):
        local = await start("local", "widget-lib", {"project_name": "Local"}, require_approval=True)
        await wait_for(local, Phase.AWAITING_APPROVAL)
        await local.execute_update(ProjectGenerationWorkflow.regenerate, RegenerateUpdate(feedback="again"))
        await wait_for(local, Phase.AWAITING_APPROVAL, spec_version=2)
        await local.execute_update(ProjectGenerationWorkflow.approve, ApprovalUpdate(notes="ok"))
        await save(local, "local_engine_steps")
    if wanted("phase_writes"):
        # Passing phases written with the next write; verify and export written alongside.
        quick = await start("quick", "widget-lib", {"project_name": "Quick"})
        await save(quick, "phase_writes")
        gated = await answered(start, "gated2")
        await gated.execute_update(ProjectGenerationWorkflow.approve, ApprovalUpdate(notes="ok"))
        await save(gated, "phase_writes_gated")
    if wanted("one_assembly"):
        # Verify and export in one activity; the export phase rides along with ready.
        await save(await start("assembled", "widget-lib", {"project_name": "Assembled"}), "one_assembly")
    if wanted("one_preparation"):
        # A run that waits for nobody: clarify, spec and decompose in one local activity.
        await save(await start("prepared", "widget-lib", {"project_name": "Prepared"}), "one_preparation")
        gated = await start(
            "gated3", "widget-lib", {"project_name": "Gated", "project_slug": "gated3"}, require_approval=True
        )
        await wait_for(gated, Phase.AWAITING_APPROVAL)
        await gated.execute_update(ProjectGenerationWorkflow.approve, ApprovalUpdate(notes="ok"))
        await save(gated, "one_preparation_gated")
    if wanted("carried_verify_write"):
        # The verify-and-export activity stores the verify phase as it starts.
        await save(await start("carried", "widget-lib", {"project_name": "Carried"}), "carried_verify_write")
    if wanted("pack_minimum"):
        # Tasks ready together go at least four to an activity.
        await save(await start("packed4", "djass-saas", {"project_name": "Packed Four"}), "pack_minimum")
        await save_slice("sliced4", "pack_minimum_slice")
    if wanted("carried_writes"):
        # The preparation stores the tasks write, verify-and-export the ready write; a failed
        # check leaves the ready write the run handed over unused.
        await save(await start("carriedw", "widget-lib", {"project_name": "Carried Writes"}), "carried_writes")
        gated = await answered(start, "gated4")
        await gated.execute_update(ProjectGenerationWorkflow.approve, ApprovalUpdate(notes="ok"))
        await save(gated, "carried_writes_gated")
        failing = await start("failing", "failing-check-lib", {"project_name": "Failing"})
        await save(failing, "carried_writes_failed_check")
    if wanted("even_packs"):
        # Nine tasks ready together, minimum four: packs of five and four.
        flags = {"project_name": "Even Packs", **{flag: "y" for flag in FLAG_FIELDS}}
        await save(await start("even", "djass-saas", flags, min_tasks_per_pack=4), "even_packs")
        await save_slice("sliced5", "even_packs_slice")
    if not only:
        await record_all(start, save)


async def answered(start, name: str) -> WorkflowHandle:  # type: ignore[no-untyped-def]
    """A run behind both gates, its questions answered: it now waits for approval."""
    gated = await start(
        name,
        "widget-lib",
        {"project_name": "Gated", "project_slug": name},
        require_approval=True,
        wait_for_answers=True,
    )
    await wait_for(gated, Phase.AWAITING_ANSWERS)
    await gated.execute_update(
        ProjectGenerationWorkflow.answers,
        AnswersUpdate(answers={"license": "MIT", "use_cli": "y", "python_version": "3.12"}),
    )
    await wait_for(gated, Phase.AWAITING_APPROVAL)
    return gated


async def record_all(start, save) -> None:  # type: ignore[no-untyped-def]
    djass = await start("acme_crm", "djass-saas", {"project_name": "Acme CRM", "use_stripe": "y", "generate_blog": "y"})
    await save(djass, "djass_all_steps")

    gated = await answered(start, "gated")
    await gated.execute_update(ProjectGenerationWorkflow.regenerate, RegenerateUpdate(feedback="more"))
    await wait_for(gated, Phase.AWAITING_APPROVAL, spec_version=2)
    await gated.signal("pause", {})
    await gated.execute_update(ProjectGenerationWorkflow.approve, ApprovalUpdate(notes="ok"))
    await asyncio.sleep(0.5)
    await gated.signal("resume", {})
    await save(gated, "gated_answers_regenerate_pause_approve")

    cancelled = await start("cancelled", "widget-lib", {"project_name": "Cancelled"}, require_approval=True)
    await wait_for(cancelled, Phase.AWAITING_APPROVAL)
    await cancelled.cancel()
    await save(cancelled, "cancelled_at_review")

    failed = await start("cyclic", "cyclic-lib", {})
    await save(failed, "failed_cyclic_template")


async def main() -> None:
    HISTORIES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            database_url=f"sqlite:///{tmp}/f.db",
            task_queue=f"rec-{uuid.uuid4().hex[:8]}",
            template_path=str(FIXTURES),
            trusted_templates="failing-check-lib",
        )
        db = Database(settings.resolved_database_url)
        db.migrate()
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=tool_path("temporal"),
            data_converter=pydantic_data_converter,
            search_attributes=SEARCH_ATTRIBUTES,
        )
        try:
            with ThreadPoolExecutor(8) as executor:
                async with build_worker(env.client, settings, db=db, executor=executor):
                    await record(env.client, db, settings, set(sys.argv[1:]))
        finally:
            await env.shutdown()
            db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
