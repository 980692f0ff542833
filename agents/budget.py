"""The budget check a phase makes before each model request. Pure: it runs in workflow code.

Checked before a request, on everything on record (every run and phase of the project,
this phase's requests included), a budget lets at most one request go beyond it: the one
that crossed the line. A request the price tables cannot price counts as exceeding a cost
budget, so an unknown model never spends unseen; without a cost budget it is only recorded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agents.types import AgentBudget, BudgetExceeded, Spend

if TYPE_CHECKING:  # the store's own record; never imported where a workflow imports this
    from store.usage import Spend as StoredSpend


def spend_of(stored: StoredSpend) -> Spend:
    """The project's spend on record (store.usage.project_spend), as a budget check reads it."""
    totals = stored.totals
    return Spend(
        requests=totals.requests,
        total_tokens=totals.total_tokens,
        cost_usd=totals.cost_usd,
        unpriced_requests=totals.unpriced_requests,
        unpriced_models=stored.unpriced_models,
    )


def budget_exceeded(budget: AgentBudget, spent: Spend) -> BudgetExceeded | None:
    limits: list = []
    reasons: list[str] = []
    if budget.max_total_tokens is not None and spent.total_tokens >= budget.max_total_tokens:
        limits.append("max_total_tokens")
        reasons.append(f"{spent.total_tokens} tokens used of a budget of {budget.max_total_tokens}")
    if budget.max_cost_usd is not None:
        if spent.unpriced_requests:
            limits.append("max_cost_usd")
            models = ", ".join(spent.unpriced_models) or "unknown"
            reasons.append(
                f"{spent.unpriced_requests} request(s) could not be priced (model {models} is not in the price "
                f"tables; set FORGEFLOW_LLM_PRICES), so the cost budget of ${budget.max_cost_usd:g} counts as exceeded"
            )
        elif spent.cost_usd >= budget.max_cost_usd:
            limits.append("max_cost_usd")
            reasons.append(f"${spent.cost_usd:.6f} spent of a budget of ${budget.max_cost_usd:g}")
    if not limits:
        return None
    return BudgetExceeded(limits=limits, message="budget exceeded: " + "; ".join(reasons))
