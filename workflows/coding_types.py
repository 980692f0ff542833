"""Agent mode, part 2, as the workflow and the activities see it: a coding agent builds
each task of the agent's plan in its own git work tree, from its dependencies' merged
commit (agents/coding/). Pydantic only, so a workflow may import them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from agents.types import Spend
from workflows.types import PlanResult, SpecResult, TaskDefinition, TaskResult, TemplateRequest
from workflows.update_types import HistoryBase

PREPARE_WORKSPACE = "prepare_workspace"
RUN_CODING_TASK = "run_coding_task"
RESTORE_CHECKPOINT = "restore_checkpoint"


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


class Checkpoint(BaseModel):
    """What a retry of a coding agents' run starts from: the approved spec and plan as they
    were (no model is asked again), and every task the run it retries had finished, with
    its commit, kept; the tasks left run from the same workspace."""

    spec: SpecResult
    plan: PlanResult
    workspace: Workspace | None = None  # None: the retried run never made one
    done: dict[str, CodingTaskResult] = Field(default_factory=dict)
