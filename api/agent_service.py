"""Agent mode's reads and its one action: what the model requests spent, the plan under
review, and a new budget for the run (checked here against what the API can know, then
handed to the workflow, whose ``raise_budget`` validator has the final word)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from agents.budget import budget_exceeded, spend_of
from agents.types import Spend
from api.agent_mode import agent_budget
from api.agent_schemas import BudgetPublic, PhaseUsage, PlanPublic, RunUsage, TaskUsage, UsagePublic
from api.errors import ApiError, invalid_field, invalid_state
from api.lifecycle_schemas import ActionResult
from api.lifecycle_service import result_of
from api.schemas import Budget
from api.steering import steer_within
from forgeflow.settings import Settings
from store.db import Database
from store.lifecycle import list_spec_versions
from store.models import Project, utcnow
from store.projects import set_agent_budget
from store.usage import UsageTotals, project_spend, usage_summary
from workflows.agent_types import AgentMode, BudgetUpdate
from workflows.types import TERMINAL_STATUSES

PLAN_DOCUMENT, TASKS_DOCUMENT = "plan.json", "tasks.md"
# The agent phases first, in the order they run; any other after them, by name.
PHASE_ORDER = {"clarify": 0, "spec": 1, "plan": 2}


def _counts(totals: UsageTotals) -> dict[str, Any]:
    return {
        "requests": totals.requests,
        "input_tokens": totals.input_tokens,
        "output_tokens": totals.output_tokens,
        "total_tokens": totals.total_tokens,
        # An unpriced request makes the cost unknown: null, never a sum that leaves it out.
        "cost_usd": None if totals.unpriced_requests else totals.cost_usd,
        "priced_cost_usd": totals.cost_usd,
        "unpriced_requests": totals.unpriced_requests,
    }


def project_usage(session: Session, *, project: Project) -> UsagePublic:
    """A project's model usage; zeros for one that made no request (a template-mode one too)."""
    summary = usage_summary(session, project_id=project.id)
    spend = project_spend(session, project_id=project.id)
    budget = None
    if project.agent is not None:
        limits = AgentMode.model_validate(project.agent).budget
        budget = BudgetPublic(max_total_tokens=limits.max_total_tokens, max_cost_usd=limits.max_cost_usd)
    phases = sorted(summary.by_phase.items(), key=lambda item: (PHASE_ORDER.get(item[0], len(PHASE_ORDER)), item[0]))
    return UsagePublic(
        **_counts(summary.totals),
        unpriced_models=spend.unpriced_models,
        budget=budget,
        by_phase=[PhaseUsage(phase=phase, **_counts(totals)) for phase, totals in phases],
        by_run=[RunUsage(run=run, **_counts(totals)) for run, totals in sorted(summary.by_run.items())],
        by_task=[TaskUsage(task_id=task, **_counts(totals)) for task, totals in sorted(summary.by_task.items())],
    )


def plan_not_found(project_id: int) -> ApiError:
    return ApiError(
        404,
        "plan_not_found",
        "validation",
        "Plan not found: no spec version holds one (only agent mode writes a plan to review).",
        details={"project_id": project_id},
    )


def latest_plan(session: Session, *, project: Project) -> PlanPublic:
    """The plan of the newest spec version that holds one (a version being rewritten has none
    until its plan is written: ``version`` says which it is)."""
    for spec in reversed(list_spec_versions(session, project_id=project.id)):
        documents = spec.documents or {}
        plan = documents.get(PLAN_DOCUMENT)
        if plan is None:
            continue
        parsed = json.loads(plan) if isinstance(plan, str) else plan
        tasks = parsed.get("tasks", []) if isinstance(parsed, dict) else []
        tasks_md = documents.get(TASKS_DOCUMENT)
        return PlanPublic(
            version=spec.version,
            approved_at=spec.approved_at,
            tasks=tasks,
            tasks_md=tasks_md if isinstance(tasks_md, str) else "",
        )
    raise plan_not_found(project.id)


async def raise_budget(
    *, db: Database, temporal: Client, settings: Settings, project: Project, budget: Budget
) -> ActionResult:
    """A new budget, replacing the old one whole. Refused before the workflow is asked when
    the project is not in agent mode or has ended (409), or when what it has spent already
    reaches the new budget (400: the run would stop again at once); stored on the project
    once the run has taken it (or it waits in Temporal as a signal), so a retry uses it."""
    if project.agent is None:
        raise invalid_state("The project is not in agent mode: it has no model budget.", project.status)
    if project.status in TERMINAL_STATUSES:
        raise invalid_state(f"The project is {project.status}; its budget can no longer change.", project.status)
    new = agent_budget(budget)

    def spent() -> Spend:
        with db.session() as session:
            return spend_of(project_spend(session, project_id=project.id))

    exceeded = budget_exceeded(new, await run_in_threadpool(spent))
    if exceeded is not None:
        raise invalid_field(exceeded.limits[0], f"the project has spent that already ({exceeded.message})")
    snapshot = await steer_within(settings, temporal, project, "raise_budget", BudgetUpdate(budget=new))

    def store() -> None:
        with db.session(write_lock=True) as session:
            set_agent_budget(session, project_id=project.id, budget=new.model_dump(mode="json"), at=utcnow())

    await run_in_threadpool(store)
    return result_of(project, snapshot)
