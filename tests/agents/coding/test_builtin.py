"""The built-in coding agent, as a workflow of its own on a real Temporal server, with
forgeflow-fake as the model (a real HTTP server, scripted per request), real git and the
real artifact store: the model's tool calls change files within the task's scope, every
refusal goes back to the model, which corrects itself, and the task's commit holds exactly
what it wrote; a replay of the task's history sends no request again."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.worker import Replayer, Worker

from agents.coding.builtin_types import BUILTIN_TASK_WORKFLOW
from agents.coding.worktree import base_bundle
from agents.fake_llm import FakeLlm, Reply
from agents.plugin import AgentWorkerPlugin
from engine.gitpack import read_bundle
from engine.tree import FileData
from engine.treediff import tree_of_commit
from forgeflow.settings import Settings
from forgeflow.worker import build_worker
from store.artifact_stores import open_artifact_store
from store.db import Database
from store.usage import list_usage
from workflows.builtin_task import BuiltinTaskWorkflow
from workflows.coding_types import CodingTaskInput, CodingTaskResult, Workspace
from workflows.types import SpecResult, TaskDefinition, TemplateRequest

BASE = {
    "README.md": FileData(b"# Widget\n"),
    "app/old.py": FileData(b"OLD = True\n"),
    "docs/guide.md": FileData(b"Read me.\n"),
}


def call(tool: str, **arguments: Any) -> Reply:
    return Reply(tool=tool, arguments=arguments)


def done(summary: str = "built x") -> Reply:
    return Reply(arguments={"summary": summary, "risks": ["untested"]})


def task_input(settings: Settings, project_id: int, **fields: Any) -> CodingTaskInput:
    commit, data = base_bundle(files=BASE, message="base\n")
    key = open_artifact_store(settings).put_bytes(f"projects/{project_id}/runs/1/base.bundle", data).key
    task = TaskDefinition(
        id="api",
        slug="api",
        description="Build the API.",
        dependencies=[],
        path_scope=["app/**"],
        expected_outputs=["app/x.py"],
        sequence=1,
    )
    return CodingTaskInput(
        request=TemplateRequest(project_id=project_id, run_number=1, template="widget-lib", answers={}),
        task=task,
        total_tasks=1,
        workspace=Workspace(base_key=key, base_commit=commit),
        spec=SpecResult(version=1, documents_key=f"projects/{project_id}/runs/1/spec/v1", digests={}),
        coding_agent="builtin",
        **fields,
    )


async def run_task(client: Client, settings: Settings, input: CodingTaskInput) -> tuple[str, CodingTaskResult]:
    workflow_id = f"builtin-test-{uuid.uuid4().hex[:12]}"
    result: CodingTaskResult = await client.execute_workflow(
        BUILTIN_TASK_WORKFLOW, input, id=workflow_id, task_queue=settings.task_queue, result_type=CodingTaskResult
    )
    return workflow_id, result


def files_of(settings: Settings, result: CodingTaskResult) -> dict[str, bytes]:
    with open_artifact_store(settings).open(result.result.bundle_key) as stored:
        _refs, objects = read_bundle(stored.read())
    tree = tree_of_commit(objects=objects, commit=bytes.fromhex(result.result.commit_sha))
    return {path: file.data for path, file in tree.items()}


def told(fake: FakeLlm, number: int) -> str:
    """What request ``number`` (1-based) told the model last: its tool results and retry prompts."""
    messages = fake.received[number - 1].body["messages"]
    return json.dumps(messages[-3:])


async def test_the_model_writes_reads_and_deletes_within_its_scope(
    client: Client, llm_settings: Settings, agent_worker: Worker, fake: FakeLlm, project_id: int, db: Database
):
    fake.script(
        call("list_files", directory=""),
        call("write_file", path="docs/x.py", content="X = 0\n"),  # outside app/**
        call("write_file", path="../x.py", content="X = 0\n"),
        call("write_file", path="/etc/x.py", content="X = 0\n"),
        call("write_file", path="app/../../x.py", content="X = 0\n"),
        call("write_file", path="app/x.py", content="X = 1\n"),  # corrected
        call("read_file", path="app/x.py"),
        call("read_file", path="docs/guide.md"),  # reads go anywhere in the project
        call("delete_file", path="docs/guide.md"),  # deletes do not
        call("delete_file", path="app/old.py"),
        call("write_file", path="app/tmp.py", content="T = 1\n"),
        call("delete_file", path="app/tmp.py"),
        done(),
    )
    workflow_id, result = await run_task(client, llm_settings, task_input(llm_settings, project_id))

    assert fake.count == 13
    assert "app/old.py" in told(fake, 2) and "docs/guide.md" in told(fake, 2)
    assert "outside this task's path scope" in told(fake, 3)
    assert "goes outside the project" in told(fake, 4)
    assert "is absolute" in told(fake, 5)
    assert "goes outside the project" in told(fake, 6)
    assert "wrote app/x.py (6 bytes)" in told(fake, 7)
    assert "X = 1" in told(fake, 8) and "Read me." in told(fake, 9)
    assert "outside this task's path scope" in told(fake, 10)

    files = files_of(llm_settings, result)
    assert files == {"README.md": b"# Widget\n", "app/x.py": b"X = 1\n", "docs/guide.md": b"Read me.\n"}
    assert (result.result.files, result.deleted, result.discarded) == (["app/x.py"], ["app/old.py"], [])
    assert result.summary == "built x" and result.risks == ["untested"]
    assert result.result.branch == "feat/task-001-api"
    assert result.input_tokens > 0 and result.output_tokens > 0

    with db.session() as session:
        rows = list_usage(session, project_id=project_id)
    run_key = rows[0].request_key.rsplit("/", 1)[0]  # the workflow's id and run: its requests' own keys
    assert run_key.startswith(f"{workflow_id}/")
    assert [(r.phase, r.task_id, r.request_key) for r in rows] == [
        ("task", "api", f"{run_key}/{n}") for n in range(1, 14)
    ]
    assert result.spent is not None and result.spent.requests == 13

    # Replayed from its history (a worker that took the task over would do this): no request is sent.
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    replayer = Replayer(workflows=[BuiltinTaskWorkflow], plugins=[AgentWorkerPlugin()])
    await replayer.replay_workflow(history)
    assert fake.count == 13


async def test_a_model_that_keeps_breaking_the_rules_fails_the_task_named(
    client: Client, llm_settings: Settings, agent_worker: Worker, fake: FakeLlm, project_id: int
):
    fake.script(*[call("write_file", path="../escape.py", content="x") for _ in range(10)])
    with pytest.raises(WorkflowFailureError) as failed:
        await run_task(client, llm_settings, task_input(llm_settings, project_id))
    message = str(failed.value.cause)
    assert "task api: the builtin agent gave up" in message and "write_file" in message
    assert fake.count <= 7


async def test_the_cost_cap_stops_the_task(
    client: Client, llm_settings: Settings, agent_worker: Worker, fake: FakeLlm, project_id: int
):
    # test-model is in no price table: with a cap, an unpriced request counts as reaching it.
    fake.script(call("write_file", path="app/x.py", content="X = 1\n"), done())
    input = task_input(llm_settings, project_id, max_cost_usd_per_task=5.0)
    with pytest.raises(WorkflowFailureError) as failed:
        await run_task(client, llm_settings, input)
    assert "could not be priced" in str(failed.value.cause) and "$5" in str(failed.value.cause)
    assert fake.count == 1


async def test_the_workers_own_cap_stops_the_task_too(
    client: Client, llm_settings: Settings, db: Database, fake: FakeLlm, project_id: int
):
    """FORGEFLOW_AGENT_MAX_COST_USD_PER_TASK caps the built-in agent's tasks as it caps the
    external agents' runs, where the project gives no cap or a looser one."""
    capped = llm_settings.model_copy(update={"agent_max_cost_usd_per_task": 0.5})
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with build_worker(client, capped, db=db, executor=executor):
            for project_cap in (None, 5.0):
                fake.replies.clear()  # what the last run left unread
                fake.received.clear()
                fake.script(call("write_file", path="app/x.py", content="X = 1\n"), done())
                input = task_input(capped, project_id, max_cost_usd_per_task=project_cap)
                with pytest.raises(WorkflowFailureError) as failed:
                    await run_task(client, capped, input)
                # test-model is in no price table: an unpriced request counts as reaching a cap.
                assert "could not be priced" in str(failed.value.cause) and "$0.5" in str(failed.value.cause)
                assert len(fake.received) == 1
