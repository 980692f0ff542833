"""Determinism guard: recorded real histories replay against today's workflow code.

A change that alters the commands a running workflow issues must go behind
``workflow.patched`` (or ship with worker versioning); otherwise these fail.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.project_generation import ProjectGenerationWorkflow
from workflows.task_batch import TaskBatchWorkflow
from workflows.types import CLARIFY, ClarifyResult, ProjectGenerationInput, ProjectGenerationResult

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


# The workflow id a history was recorded under, where the code derives commands from it
# (a batched run names its child workflows after itself).
RECORDED_IDS = {
    "batched_tasks": "project-1",
    "task_packs_slice": "project-2-run-1-tasks-1",
    "pack_minimum_slice": "project-2-run-1-tasks-1",
    "even_packs_slice": "project-2-run-1-tasks-1",
}


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(RECORDED_IDS.get(path.stem, path.stem), path.read_text())


def test_every_path_has_a_recorded_history():
    assert {p.stem for p in HISTORIES} >= {
        "djass_all_steps",
        "gated_answers_regenerate_pause_approve",
        "cancelled_at_review",
        "failed_cyclic_template",
        "batched_tasks",
        "batched_tasks_slice",
        "local_engine_steps",
        "task_packs",
        "task_packs_slice",
        "phase_writes",
        "phase_writes_gated",
        "one_assembly",
        "one_preparation",
        "one_preparation_gated",
        "carried_verify_write",
        "pack_minimum",
        "pack_minimum_slice",
        "carried_writes",
        "carried_writes_gated",
        "carried_writes_failed_check",
        "even_packs",
        "even_packs_slice",
    }


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_recorded_history_replays(path):
    replayer = Replayer(
        workflows=[ProjectGenerationWorkflow, TaskBatchWorkflow], data_converter=pydantic_data_converter
    )
    result = await replayer.replay_workflow(load(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


@workflow.defn(name="ProjectGenerationWorkflow", sandboxed=False)
class ReorderedWorkflow(ProjectGenerationWorkflow):
    """A careless edit: one more activity before the first phase, without a patch."""

    @workflow.run
    async def run(self, input: ProjectGenerationInput) -> ProjectGenerationResult:
        await workflow.execute_activity(
            CLARIFY, self._request(None), result_type=ClarifyResult, start_to_close_timeout=timedelta(seconds=5)
        )
        return await super().run(input)


async def test_a_non_deterministic_change_fails_the_replay():
    replayer = Replayer(workflows=[ReorderedWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(load(HISTORIES[0]), raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()
