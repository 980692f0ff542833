"""Model usage of agent mode: one row per completed model request, and what a project has
spent, in total and by phase, run and task."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from store.lifecycle import NewEvent, append_events, lock_project
from store.models import ModelUsage
from store.projects import ProjectMissing

AGENT_REQUEST_COMPLETED = "agent_request_completed"


@dataclass(frozen=True)
class NewUsage:
    key: str  # unique per request within the project
    project_id: int
    run_number: int
    phase: str
    task_id: str | None
    number: int  # the request's number within its phase
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None  # None: unpriced

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def event(self) -> NewEvent:
        """``agent_request_completed``: the phase, the tokens and the cost; never prompt text."""
        payload: dict[str, Any] = {
            "phase": self.phase,
            "run": self.run_number,
            "request": self.number,
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "cost_usd": self.cost_usd,
        }
        return NewEvent(type=AGENT_REQUEST_COMPLETED, key=f"usage:{self.key}", payload=payload, task_id=self.task_id)


@dataclass(frozen=True)
class UsageTotals:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0  # of the priced requests
    unpriced_requests: int = 0


@dataclass(frozen=True)
class Spend:
    totals: UsageTotals
    unpriced_models: list[str]


@dataclass(frozen=True)
class UsageSummary:
    totals: UsageTotals
    by_phase: dict[str, UsageTotals] = field(default_factory=dict)
    by_run: dict[int, UsageTotals] = field(default_factory=dict)
    by_task: dict[str, UsageTotals] = field(default_factory=dict)


def record_usage(session: Session, *, usage: NewUsage, at: datetime) -> bool:
    """Store one request and its ``agent_request_completed`` event, in the caller's
    transaction (hold the write lock: the event takes the project's next number). False, and
    nothing written, when the request is on record already (a retried recording)."""
    if lock_project(session, project_id=usage.project_id) is None:
        raise ProjectMissing(f"project {usage.project_id} does not exist")
    found = session.scalar(
        select(ModelUsage.id).where(ModelUsage.project_id == usage.project_id, ModelUsage.request_key == usage.key)
    )
    if found is not None:
        return False
    session.add(
        ModelUsage(
            project_id=usage.project_id,
            run_number=usage.run_number,
            phase=usage.phase,
            task_id=usage.task_id,
            request_key=usage.key,
            model=usage.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            total_tokens=usage.total_tokens,
            cost_usd=usage.cost_usd,
            created_at=at,
        )
    )
    session.flush()
    append_events(session, project_id=usage.project_id, events=[usage.event()], at=at)
    return True


def _totals_columns() -> list[ColumnElement[Any]]:
    return [
        func.count(ModelUsage.id),
        func.coalesce(func.sum(ModelUsage.input_tokens), 0),
        func.coalesce(func.sum(ModelUsage.output_tokens), 0),
        func.coalesce(func.sum(ModelUsage.total_tokens), 0),
        func.coalesce(func.sum(ModelUsage.cost_usd), 0.0),
        func.count(ModelUsage.id) - func.count(ModelUsage.cost_usd),  # COUNT(column) skips NULLs
    ]


def _totals(row: Any) -> UsageTotals:
    requests, input_tokens, output_tokens, total_tokens, cost, unpriced = row
    return UsageTotals(
        int(requests), int(input_tokens), int(output_tokens), int(total_tokens), float(cost), int(unpriced)
    )


def project_spend(session: Session, *, project_id: int) -> Spend:
    """Everything the project has spent, every run, phase and task; the unpriced models named."""
    where = ModelUsage.project_id == project_id
    totals = _totals(session.execute(select(*_totals_columns()).where(where)).one())
    unpriced = session.scalars(
        select(ModelUsage.model).where(where, ModelUsage.cost_usd.is_(None)).distinct().order_by(ModelUsage.model)
    ).all()
    return Spend(totals=totals, unpriced_models=list(unpriced))


def usage_summary(session: Session, *, project_id: int) -> UsageSummary:
    where = ModelUsage.project_id == project_id
    columns = _totals_columns()
    totals = _totals(session.execute(select(*columns).where(where)).one())
    by_phase = {
        row[0]: _totals(row[1:])
        for row in session.execute(select(ModelUsage.phase, *columns).where(where).group_by(ModelUsage.phase))
    }
    by_run = {
        int(row[0]): _totals(row[1:])
        for row in session.execute(select(ModelUsage.run_number, *columns).where(where).group_by(ModelUsage.run_number))
    }
    tasks = select(ModelUsage.task_id, *columns).where(where, ModelUsage.task_id.is_not(None))
    by_task = {row[0]: _totals(row[1:]) for row in session.execute(tasks.group_by(ModelUsage.task_id))}
    return UsageSummary(totals=totals, by_phase=by_phase, by_run=by_run, by_task=by_task)


def list_usage(session: Session, *, project_id: int, run_number: int | None = None) -> list[ModelUsage]:
    """The requests on record, oldest first."""
    query = select(ModelUsage).where(ModelUsage.project_id == project_id)
    if run_number is not None:
        query = query.where(ModelUsage.run_number == run_number)
    return list(session.scalars(query.order_by(ModelUsage.id)))
