"""Agent mode, as the project workflow and the API see it: what a client asked for (the
model, the budget, the brief) and what it may change later (the budget). The agent phases'
own types are in agents/types.py; these stay pydantic-only, so a workflow may import them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

CodingAgentKind = Literal["builtin", "claude-code", "codex", "command"]

# No brief is ever longer (characters); the API refuses one over FORGEFLOW_LLM_MAX_BRIEF_CHARS.
MAX_BRIEF_CHARS = 100_000
# Fix tasks a coding agents' run may make in a row for failing checks (workflows/fixes.py).
DEFAULT_FIX_ATTEMPTS = 2
MAX_FIX_ATTEMPTS = 5
# What a run's build waits for once it is merged and verified: nobody, or a person's review of its diff.
ReviewKind = Literal["diff"]


class AgentBudget(BaseModel):
    """What the project may spend on models, all its runs and phases together; None: no limit."""

    max_total_tokens: int | None = Field(default=None, ge=0)
    max_cost_usd: float | None = Field(default=None, ge=0)
    # A coding agent's cap on one task (part 2), enforced from what the agent reports.
    max_cost_usd_per_task: float | None = Field(default=None, ge=0)


class AgentMode(BaseModel):
    """A project in agent mode: a model writes its questions, spec and plan from the brief."""

    brief: str = Field(default="", max_length=MAX_BRIEF_CHARS)
    model: str  # as configured on the workers (FORGEFLOW_LLM_MODEL), recorded with the project
    budget: AgentBudget = Field(default_factory=AgentBudget)
    # Part 2: who builds the plan's tasks (agents/coding/): "builtin", "claude-code", "codex"
    # or "command", as the workers are configured; None: the template's modules (part 1).
    coding_agent: CodingAgentKind | None = None
    # With a coding agent: how often a failing verification goes back to a fix task before
    # the run fails, and whether the verified build waits for a review of its diff.
    max_fix_attempts: int = Field(default=DEFAULT_FIX_ATTEMPTS, ge=0, le=MAX_FIX_ATTEMPTS)
    review: ReviewKind | None = None

    @model_serializer(mode="wrap")
    def _as_chosen(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # The fix and review options go on record only where a client chose them: a project
        # without them stores, and its runs are handed, exactly what they were before them.
        data: dict[str, Any] = handler(self)
        if data.get("max_fix_attempts") == DEFAULT_FIX_ATTEMPTS:
            del data["max_fix_attempts"]
        if data.get("review") is None:
            data.pop("review", None)
        return data


class BudgetUpdate(BaseModel):
    """A new budget: it replaces the old one whole (a limit left out is no limit)."""

    budget: AgentBudget
