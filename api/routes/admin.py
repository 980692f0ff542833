"""Operator figures across every owner (scope ``admin``): the projection's counts and the
task queue as Temporal sees it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.auth_first import AuthFirstRoute
from api.deps import DatabaseDep, SettingsDep, TemporalDep, require_scope
from api.errors import ERROR_RESPONSES
from api.probes import QueueFigures, queue_figures
from store.db import Database
from store.keys import Identity
from store.models import Project, Run, Task
from store.stats import count_by_status, count_events, task_totals

router = APIRouter(route_class=AuthFirstRoute, prefix="/admin", tags=["admin"], responses=ERROR_RESPONSES)

AdminDep = Annotated[Identity, Depends(require_scope("admin"))]


class StatusCounts(BaseModel):
    total: int
    by_status: dict[str, int]


class TaskCounts(StatusCounts):
    attempts: int
    retries: int
    failures: int


class EventCounts(BaseModel):
    total: int


class AdminStats(BaseModel):
    projects: StatusCounts
    runs: StatusCounts
    tasks: TaskCounts
    events: EventCounts
    queue: QueueFigures


def _counts(counts: dict[str, int]) -> StatusCounts:
    return StatusCounts(total=sum(counts.values()), by_status=counts)


def _projection(db: Database) -> tuple[StatusCounts, StatusCounts, TaskCounts, EventCounts]:
    with db.session() as session:
        tasks, totals = count_by_status(session, Task), task_totals(session)
        return (
            _counts(count_by_status(session, Project)),
            _counts(count_by_status(session, Run)),
            TaskCounts(
                total=sum(tasks.values()),
                by_status=tasks,
                attempts=totals.attempts,
                retries=totals.retries,
                failures=totals.failures,
            ),
            EventCounts(total=count_events(session)),
        )


@router.get("/stats", response_model=AdminStats, summary="Counts across every owner and the task queue")
async def read_stats(_: AdminDep, db: DatabaseDep, temporal: TemporalDep, settings: SettingsDep) -> AdminStats:
    """Projects, runs and tasks by status and the event count, from the database; open
    workflows and pollers on the task queue from Temporal (null when it does not answer
    within 2 s)."""
    projects, runs, tasks, events = await run_in_threadpool(_projection, db)
    queue = await queue_figures(temporal, settings.task_queue)
    return AdminStats(projects=projects, runs=runs, tasks=tasks, events=events, queue=queue)
