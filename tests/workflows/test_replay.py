"""Determinism guard: recorded real histories replay against today's workflow code.

Until the first tagged release the histories are re-recorded on purpose when the
workflow's commands change; from then on such a change goes behind ``workflow.patched``
(or ships with worker versioning), and these fail on one that does not.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from agents.coding.builtin_worker import builtin_mode
from agents.worker import agent_mode
from forgeflow.settings import Settings
from workflows.project_generation import ProjectGenerationWorkflow
from workflows.tasks import TaskSliceWorkflow
from workflows.types import CLARIFY, ClarifyResult, ProjectGenerationInput, ProjectGenerationResult
from workflows.webhooks import WebhookRelayWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


# The workflow id a history was recorded under, where the code derives commands from it
# (a sliced run, or one with the built-in agent, names its child workflows after itself).
RECORDED_IDS = {
    "sliced": "project-9",
    "sliced_slice": "project-9-run-1-tasks-1",
    "coding_fix_review": "project-1",
    "builtin_agent": "project-1",
    "builtin_agent_task": "project-1/run-1/task-001-api",
}


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(RECORDED_IDS.get(path.stem, path.stem), path.read_text())


def test_every_path_has_a_recorded_history():
    # One history per real path the run can take (tests/workflows/record_histories.py).
    assert {p.stem for p in HISTORIES} == {
        "ungated",
        "gated_answers_regenerate_approve",
        "rejected",
        "paused_resumed",
        "cancelled_mid_tasks",
        "failed_task",
        "failed_check",
        "failed_plan",
        "sliced",
        "sliced_slice",
        "coding_fix_review",  # agent mode: model requests, coding agent, verify, fix, review
        "builtin_agent",  # agent mode, its task built by the built-in agent in a child workflow
        "builtin_agent_task",  # that child: model requests, each file tool, usage records, finish
    }


def test_the_workflow_has_one_path():
    # No patches before the first tagged release (README: versioning the workflow).
    sources = [p.read_text() for p in (Path(__file__).parents[2] / "workflows").glob("*.py")]
    assert sum(source.count("workflow.patched(") for source in sources) == 0


@cache
def replayer() -> Replayer:
    """The workflows a worker with a model provider runs (forgeflow.worker.build_worker):
    agent mode's phase workflow and Pydantic AI's plugin, the built-in agent's task workflow,
    their model requests installed for this process. No request is made: the provider's
    address is never called in a replay."""
    settings = Settings(llm_base_url="http://127.0.0.1:9/v1", llm_api_key=SecretStr("replay"), llm_model="test-model")
    agents, builtin = agent_mode(settings), builtin_mode(settings)
    return Replayer(
        workflows=[
            ProjectGenerationWorkflow,
            TaskSliceWorkflow,
            WebhookRelayWorkflow,
            *agents.workflows,
            *builtin.workflows,
        ],
        plugins=agents.plugins,
        data_converter=pydantic_data_converter,
    )


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_recorded_history_replays(path):
    result = await replayer().replay_workflow(load(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


@workflow.defn(name="ProjectGenerationWorkflow", sandboxed=False)
class ReorderedWorkflow(ProjectGenerationWorkflow):
    """A careless edit: one more activity before the first phase, without a patch."""

    @workflow.run
    async def run(self, input: ProjectGenerationInput) -> ProjectGenerationResult:
        await workflow.execute_activity(
            CLARIFY, self._steps.request(None), result_type=ClarifyResult, start_to_close_timeout=timedelta(seconds=5)
        )
        return await super().run(input)


async def test_a_non_deterministic_change_fails_the_replay():
    replayer = Replayer(workflows=[ReorderedWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(load(HISTORIES[0]), raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()
