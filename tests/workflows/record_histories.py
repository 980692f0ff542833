"""Record real workflow histories for the replay tests.

    .venv/bin/python -m tests.workflows.record_histories [NAME ...]

Starts a dev server, a worker and a SQLite database in a temporary directory, drives one
project through each path a run can take, and writes each history as JSON under
tests/workflows/histories/ (only the named ones, if names are given). Each agent-mode run
has its own worker and database, with forgeflow-fake (agents/fake_llm.py) as its model:
``coding_fix_review`` with the fake coder (agents/fake_coder.py) as its ``command`` agent,
``builtin_agent`` (and ``builtin_agent_task``, its task's child) with the built-in agent.

Until the first tagged release the workflow has one path and these are re-recorded on
purpose whenever its commands change. From the first release on, a change that alters
commands goes behind ``workflow.patched`` and the old histories stay (README).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

import agents
from agents.fake_llm import FakeLlm, Reply
from api.schemas import FLAG_FIELDS
from forgeflow.settings import Settings
from forgeflow.worker import build_worker
from store.db import Database
from store.keys import create_key
from store.projects import create_project
from tests.support import tool_path
from workflows import workflow_id_for
from workflows.agent_types import AgentMode
from workflows.project_generation import ProjectGenerationWorkflow
from workflows.types import (
    SEARCH_ATTRIBUTES,
    AnswersUpdate,
    ApprovalUpdate,
    PauseUpdate,
    Phase,
    ProjectGenerationInput,
    RegenerateUpdate,
)

HISTORIES = Path(__file__).parent / "histories"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "templates"

# Agent mode with a coding agent (tests/api/test_verify_fix.py, test_diff_review.py): the
# empty template with one check that fails until the first fix task writes app/fix_1.py
# (the fake coder writes ``<first scope dir>/<slug>.py``).
FAKE_CODER = Path(agents.__file__).parent / "fake_coder.py"
EMPTY = Path(__file__).parents[2] / "engine" / "templates" / "empty"
FIXABLE = "fixable-lib"
CHECK = "python -c \"import pathlib, sys; sys.exit(0 if pathlib.Path('app/fix_1.py').exists() else 'no fix yet')\""
PLAN = {
    "tasks": [
        {"id": "api", "title": "API", "instructions": "Build the API.", "path_scope": ["app/**"], "dependencies": []},
        {"id": "docs", "title": "Docs", "instructions": "Write docs.", "path_scope": ["docs/**"], "dependencies": []},
    ]
}
# The built-in agent's one task (scope app/**, the empty template, no checks): each file tool,
# a refusal (outside its scope) among them; its report is forgeflow-fake's own answer.
BUILTIN_PLAN = {"tasks": [{**PLAN["tasks"][0], "path_scope": ["app/**"]}]}
BUILTIN_CALLS = (
    ("list_files", {"directory": ""}),
    ("write_file", {"path": "docs/api.md", "content": "# API\n"}),
    ("write_file", {"path": "app/api.py", "content": "def api():\n    return 1\n"}),
    ("write_file", {"path": "app/scratch.py", "content": "SCRATCH = 1\n"}),
    ("delete_file", {"path": "app/scratch.py"}),
    ("read_file", {"path": "app/api.py"}),
)


async def wait_for(handle: WorkflowHandle, phase: Phase, spec_version: int = 0) -> None:
    while True:
        snapshot = await handle.query(ProjectGenerationWorkflow.status)
        if snapshot.phase == phase and snapshot.spec_version >= spec_version:
            return
        await asyncio.sleep(0.05)


async def save(handle: WorkflowHandle, name: str) -> None:
    with contextlib.suppress(Exception):  # failed and cancelled runs are recorded too
        await handle.result()
    history = await handle.fetch_history()
    (HISTORIES / f"{name}.json").write_text(history.to_json())
    print(f"recorded {name} ({handle.id}): {len(history.events)} events")


async def record(client: Client, db: Database, settings: Settings, only: set[str]) -> None:
    with db.session() as session:
        key = create_key(session, owner_name="recorder", email="r@example.test", project_quota=100)

    async def start(name: str, template: str, answers: dict, **options: Any) -> WorkflowHandle:
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

    async def gated(name: str, **options: Any) -> WorkflowHandle:
        """A run waiting for the review of its first spec."""
        handle = await start(name, "widget-lib", {"project_name": name.title(), "project_slug": name}, **options)
        await wait_for(handle, Phase.AWAITING_APPROVAL)
        return handle

    def wanted(name: str) -> bool:
        return not only or name in only

    if wanted("ungated"):
        flags = {"project_name": "Acme CRM", **{flag: "y" for flag in FLAG_FIELDS}}
        await save(await start("acme_crm", "djass-saas", flags), "ungated")
    if wanted("gated_answers_regenerate_approve"):
        handle = await start(
            "gated",
            "widget-lib",
            {"project_name": "Gated", "project_slug": "gated"},
            require_approval=True,
            wait_for_answers=True,
        )
        await wait_for(handle, Phase.AWAITING_ANSWERS)
        answers = AnswersUpdate(answers={"license": "MIT", "use_cli": "y", "python_version": "3.12"})
        await handle.execute_update(ProjectGenerationWorkflow.answers, answers)
        await wait_for(handle, Phase.AWAITING_APPROVAL)
        await handle.execute_update(ProjectGenerationWorkflow.regenerate, RegenerateUpdate(feedback="more", version=1))
        await wait_for(handle, Phase.AWAITING_APPROVAL, spec_version=2)
        await handle.execute_update(ProjectGenerationWorkflow.approve, ApprovalUpdate(notes="ok", version=2))
        await save(handle, "gated_answers_regenerate_approve")
    if wanted("rejected"):
        handle = await gated("rejected", require_approval=True)
        await handle.execute_update(ProjectGenerationWorkflow.reject, ApprovalUpdate(notes="not this", version=1))
        await save(handle, "rejected")
    if wanted("paused_resumed"):
        # Paused at the gate (a script's signal), approved, held before its first task, resumed.
        handle = await gated("paused", require_approval=True)
        await handle.signal("pause", PauseUpdate(reason="lunch"))
        await handle.execute_update(ProjectGenerationWorkflow.approve, ApprovalUpdate(notes="ok"))
        await wait_for(handle, Phase.TASKS)
        await handle.execute_update(ProjectGenerationWorkflow.resume, PauseUpdate())
        await save(handle, "paused_resumed")
    if wanted("cancelled_mid_tasks"):
        handle = await gated("cancelled", require_approval=True)
        await handle.execute_update(ProjectGenerationWorkflow.pause, PauseUpdate())
        await handle.execute_update(ProjectGenerationWorkflow.approve, ApprovalUpdate())
        await wait_for(handle, Phase.TASKS)
        await handle.cancel()
        await save(handle, "cancelled_mid_tasks")
    if wanted("failed_task"):
        await save(await start("broken", "broken-task-lib", {"project_name": "Broken"}), "failed_task")
    if wanted("failed_check"):
        await save(await start("failing", "failing-check-lib", {"project_name": "Failing"}), "failed_check")
    if wanted("failed_plan"):
        await save(await start("cyclic", "cyclic-lib", {}), "failed_plan")
    if wanted("sliced"):
        # A plan larger than tasks_per_batch: its tasks in child workflows, the first one saved too.
        handle = await start("sliced", "widget-lib", {"project_name": "Sliced"}, tasks_per_batch=2)
        await save(handle, "sliced")
        await save(client.get_workflow_handle(f"{handle.id}-run-1-tasks-1"), "sliced_slice")


async def start_agent(
    client: Client, db: Database, settings: Settings, fake: FakeLlm, agent: AgentMode, template: str, *replies: Reply
) -> WorkflowHandle:
    """An agent-mode run of ``template``, the model's answers scripted: clarify, spec, plan, ``replies``."""
    fake.script(Reply(), Reply(), *replies)
    answers = {"project_name": "Fix Me"}
    with db.session(write_lock=True) as session:
        key = create_key(session, owner_name="agent-recorder", email="a@example.test", project_quota=100)
        project = create_project(
            session,
            owner_id=key.owner_id,
            quota=100,
            name="Fix Me",
            slug="fix_me",
            description="",
            template=template,
            input_payload={**answers, "template": template, "agent": {}, "prompt": agent.brief},
            agent=agent.model_dump(mode="json"),
        )
    return await client.start_workflow(
        ProjectGenerationWorkflow.run,
        ProjectGenerationInput(
            project_id=project.id,
            owner="agent-recorder",
            owner_id=key.owner_id,
            name="Fix Me",
            slug="fix_me",
            template=template,
            answers=answers,
            agent=agent,
        ),
        id=workflow_id_for(project.id),
        task_queue=settings.task_queue,
    )


async def record_agent(client: Client, db: Database, settings: Settings, fake: FakeLlm) -> None:
    """A coding agents' run: a plan of two tasks, built by the ``command`` agent; the check
    fails, one fix task turns it green, the build waits at its review and is approved."""
    model = str(settings.llm_model)
    agent = AgentMode(brief="A fixable thing.", model=model, coding_agent="command", review="diff", max_fix_attempts=1)
    handle = await start_agent(client, db, settings, fake, agent, FIXABLE, Reply(arguments=PLAN))
    await wait_for(handle, Phase.AWAITING_REVIEW)
    await handle.execute_update(ProjectGenerationWorkflow.approve, ApprovalUpdate(notes="ok", version=1))
    await save(handle, "coding_fix_review")


async def record_builtin(client: Client, db: Database, settings: Settings, fake: FakeLlm) -> None:
    """The built-in agent's run: a plan of one task, built in a child workflow (its history
    saved too) with the file tools, to ready without a review."""
    agent = AgentMode(brief="A small API.", model=str(settings.llm_model), coding_agent="builtin")
    calls = [Reply(tool=tool, arguments=arguments) for tool, arguments in BUILTIN_CALLS]
    handle = await start_agent(client, db, settings, fake, agent, "empty", Reply(arguments=BUILTIN_PLAN), *calls)
    await handle.result()  # ready
    await save(handle, "builtin_agent")
    await save(client.get_workflow_handle(f"{handle.id}/run-1/task-001-api"), "builtin_agent_task")


# Each agent-mode history: its coding agent and recorder.
AGENT_HISTORIES = {"coding_fix_review": ("command", record_agent), "builtin_agent": ("builtin", record_builtin)}


def agent_settings(settings: Settings, fake: FakeLlm, tmp: Path, coding_agent: str) -> Settings:
    """The recorder's settings with a provider, ``coding_agent`` (the fake coder as the
    ``command`` one), and the fixable template (trusted: only a trusted template's checks run)."""
    templates = tmp / "templates"
    shutil.copytree(EMPTY, templates / FIXABLE)
    manifest = templates / FIXABLE / "forgeflow.yaml"
    quoted = "'" + CHECK.replace("'", "''") + "'"  # YAML's single-quoted string
    manifest.write_text(manifest.read_text().replace("checks: []", f"checks:\n  - {quoted}"))
    return settings.model_copy(
        update={
            "task_queue": f"rec-agent-{uuid.uuid4().hex[:8]}",
            "database_url": f"sqlite:///{tmp}/agent.db",
            "template_path": f"{templates}{os.pathsep}{settings.template_path}",
            "trusted_templates": f"{settings.trusted_templates},{FIXABLE}",
            "llm_base_url": fake.url,
            "llm_api_key": SecretStr("test-key"),
            "llm_model": "test-model",
            "coding_agent": coding_agent,
            "agent_command": f"{sys.executable} {FAKE_CODER} {{prompt_file}} {{workdir}}",
            "agent_read_only": str(FAKE_CODER.parent),
            "agent_timeout_seconds": 60,
        }
    )


async def main() -> None:
    HISTORIES.mkdir(exist_ok=True)
    only = set(sys.argv[1:])
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
                if not only or only - AGENT_HISTORIES.keys():
                    async with build_worker(env.client, settings, db=db, executor=executor):
                        await record(env.client, db, settings, only)
                for name, (coding_agent, recorder) in AGENT_HISTORIES.items():
                    if only and name not in only:
                        continue
                    # Its own worker, task queue and database (its project is project-1 however
                    # many ran before it): the other paths are recorded without a provider.
                    async with FakeLlm() as fake:
                        with_agent = agent_settings(settings, fake, Path(tmp) / name, coding_agent)
                        agent_db = Database(with_agent.resolved_database_url)
                        agent_db.migrate()
                        try:
                            async with build_worker(env.client, with_agent, db=agent_db, executor=executor):
                                await recorder(env.client, agent_db, with_agent, fake)
                        finally:
                            agent_db.dispose()
        finally:
            await env.shutdown()
            db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
