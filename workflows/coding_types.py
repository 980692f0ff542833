"""Agent mode, part 2, as the workflow and the activities see it: a coding agent builds
each task of the agent's plan in its own git work tree, from its dependencies' merged
commit (agents/coding/). Pydantic only, so a workflow may import them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from agents.types import Spend
from workflows.types import (
    AssembleInput,
    PlanResult,
    SpecResult,
    TaskDefinition,
    TaskResult,
    TemplateRequest,
    VerifyResult,
)
from workflows.update_types import HistoryBase, RunCommits

PREPARE_WORKSPACE = "prepare_workspace"
RUN_CODING_TASK = "run_coding_task"
RESTORE_CHECKPOINT = "restore_checkpoint"
VERIFY_MERGED = "verify_merged"

# The most of a failing check's output a fix task is given (its last characters): enough
# for any traceback; the sandbox itself keeps only the tail of a program's output.
MAX_FIX_OUTPUT = 20_000


class WorkspaceInput(BaseModel):
    request: TemplateRequest
    base: HistoryBase | None = None  # a run on top of a ready project's history


class Workspace(BaseModel):
    """Where the run's tasks start: a history whose ``main`` is the template's scaffold (a
    first run) or the project's last main (a run on top of it)."""

    base_key: str  # a git bundle in the artifact store
    base_commit: str


class TaskDependency(BaseModel):
    task_id: str
    branch: str
    bundle_key: str  # the dependency's branch, as its task stored it


class FixRequest(BaseModel):
    """Why a fix task runs, given to its agent as data (agents/task_prompt.py): the check
    that failed and its output, or what a reviewer asked for, each literal."""

    reason: Literal["checks", "review"]
    attempt: int  # checks: the fix attempt in a row (1..max_fix_attempts); review: the round
    check: str = ""  # the failing check's command, or "verification" (files the rules refused)
    output: str = Field(default="", max_length=MAX_FIX_OUTPUT)
    feedback: str = ""  # the reviewer's words


class CodingTaskInput(BaseModel):
    request: TemplateRequest
    task: TaskDefinition
    total_tasks: int
    workspace: Workspace
    dependencies: list[TaskDependency] = Field(default_factory=list)  # in the plan's order
    spec: SpecResult  # the approved documents: what the agent builds to
    coding_agent: str  # the kind (agents.coding.config.AgentKind) the workers run it with
    model: str | None = None
    max_cost_usd_per_task: float | None = None
    fix: FixRequest | None = None  # a fix task (workflows/fixes.py): what it is to fix


class CodingTaskResult(BaseModel):
    result: TaskResult  # files: what the task changed; bundle_key: its branch's history
    deleted: list[str] = Field(default_factory=list)
    discarded: list[str] = Field(default_factory=list)  # changes outside the scope, reverted
    summary: str = ""
    risks: list[str] = Field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    spent: Spend | None = None  # the project's spend on record once this task's usage was


class CheckpointInput(BaseModel):
    request: TemplateRequest  # the retry's: its run number, the template pinned
    previous_run: int  # the run it retries
    spec_version: int  # the approved version: its documents and its plan, as they were
    # A run on top of a ready project's history (a run on demand) started its tasks there,
    # not from a scaffold of its own.
    base: HistoryBase | None = None


class Checkpoint(BaseModel):
    """What a retry of a coding agents' run starts from: the approved spec and plan as they
    were (no model is asked again), and every task the run it retries had finished, with
    its commit, kept; the tasks left run from the same workspace."""

    spec: SpecResult
    plan: PlanResult
    workspace: Workspace | None = None  # None: the retried run never made one
    done: dict[str, CodingTaskResult] = Field(default_factory=dict)


class VerifyMergedInput(BaseModel):
    assemble: AssembleInput  # the tasks' branches (fix tasks' included) and the base they merge into
    round: int  # this run's verification number: where its merged history is stored


class VerifiedMerge(BaseModel):
    """Coding agents' tasks merged and verified, the run not failed either way: the merged
    history, stored (a fix task starts from it; the review gate's diff is served from it),
    and what failed."""

    verification: VerifyResult
    history: RunCommits
    failed_check: str = ""  # the first failing check's command; "verification": no check, other errors
    output: str = Field(default="", max_length=MAX_FIX_OUTPUT)  # its output (or the errors), literal
