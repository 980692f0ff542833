"""A coding agent's task as the run records it, whoever the agent was (an external program,
activities/coding.py, or the built-in agent, activities/builtin.py): the commit made from
its work, its branch's bundle stored where a retry or the merge finds it, and what the agent
reported and spent."""

from __future__ import annotations

from dataclasses import dataclass

from agents.coding.worktree import TaskCommit
from agents.types import Spend
from engine.gitrepo import branch_name
from store.artifacts import ArtifactStore
from workflows.coding_types import CodingTaskResult
from workflows.types import TaskDefinition, TaskResult

# What of an agent's own report is kept: its summary, and its risks, each this long at most.
MAX_SUMMARY_CHARS, MAX_RISKS, MAX_RISK_CHARS = 2000, 20, 500


@dataclass(frozen=True)
class AgentReport:
    """What the agent said and spent on the task (its usage; the project's spend after it)."""

    summary: str = ""
    risks: tuple[str, ...] = ()
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    spent: Spend | None = None


def task_branch(task: TaskDefinition) -> str:
    return branch_name(task.sequence, task.slug)


def task_message(task: TaskDefinition) -> str:
    """The task's commit message: the same task gives the same commit, whoever retries it."""
    return f"Task {task.sequence}: {task.slug}\n\n{task.description}\n"


def stored_task(
    *, artifacts: ArtifactStore, run_prefix: str, task: TaskDefinition, committed: TaskCommit, report: AgentReport
) -> CodingTaskResult:
    """The task's branch bundle stored (``<run>/tasks/NNN-slug.bundle``, where a retry of the
    run finds it: activities/checkpoints.py), and the task's result."""
    stored = artifacts.put_bytes(f"{run_prefix}/tasks/{task.sequence:03d}-{task.slug}.bundle", committed.bundle)
    result = TaskResult(
        task_id=task.id,
        files=committed.changed,
        bundle_key=stored.key,
        bundle_sha256=stored.sha256,
        branch=task_branch(task),
        commit_sha=committed.commit,
        summary=report.summary[:MAX_SUMMARY_CHARS],
        risks=[risk[:MAX_RISK_CHARS] for risk in report.risks[:MAX_RISKS]],
    )
    return CodingTaskResult(
        result=result,
        deleted=committed.deleted,
        discarded=committed.discarded,
        summary=result.summary,
        risks=result.risks,
        input_tokens=report.input_tokens,
        output_tokens=report.output_tokens,
        cost_usd=report.cost_usd,
        spent=report.spent,
    )
