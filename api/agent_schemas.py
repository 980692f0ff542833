"""Bodies of agent mode's endpoints: the model usage, the plan. (The budget a client sends is
api.schemas.Budget, the same as in a create.)"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from api.schemas import OptionalTimestamp


class UsageCounts(BaseModel):
    requests: int = Field(description="Completed model requests")
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float | None = Field(
        description="In US dollars; null when a request could not be priced (its model is in no price table): "
        "then the cost is unknown, and priced_cost_usd is what is known of it"
    )
    priced_cost_usd: float = Field(description="The cost of the requests that could be priced")
    unpriced_requests: int = Field(description="Requests whose model no price table knows (FORGEFLOW_LLM_PRICES)")


class PhaseUsage(UsageCounts):
    phase: str


class RunUsage(UsageCounts):
    run: int


class TaskUsage(UsageCounts):
    task_id: str


class BudgetPublic(BaseModel):
    max_total_tokens: int | None = Field(description="null: no token limit")
    max_cost_usd: float | None = Field(description="null: no cost limit")
    max_cost_usd_per_task: float | None = Field(default=None, description="null: no cap on one coding task")


class UsagePublic(UsageCounts):
    """What the project's model requests have spent: every run, phase and task together,
    then by phase, run and task (a phase's requests outside any task are in no task's)."""

    unpriced_models: list[str] = Field(description="The models of the unpriced requests")
    budget: BudgetPublic | None = Field(description="The project's budget now; null: not in agent mode")
    by_phase: list[PhaseUsage]
    by_run: list[RunUsage]
    by_task: list[TaskUsage]


class PlanPublic(BaseModel):
    """The plan a model wrote for a spec version, as the review sees it."""

    version: int = Field(description="The spec version the plan belongs to")
    approved_at: OptionalTimestamp
    tasks: list[dict[str, Any]] = Field(
        description="plan.json's tasks: id, title, instructions, dependencies, path_scope, expected_outputs"
    )
    tasks_md: str = Field(description="tasks.md: the plan for review; [P] marks tasks that may run in parallel")
