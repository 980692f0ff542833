"""Short, bounded checks of what the API depends on: for /readyz and the admin stats.
Every check gives up after ``PROBE_TIMEOUT`` and says so instead of raising."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import timedelta
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from store.db import Database

log = logging.getLogger("forgeflow.api")

PROBE_TIMEOUT = 2.0
T = TypeVar("T")


def _select_one(db: Database) -> None:
    with db.engine.connect() as conn:
        if db.engine.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL statement_timeout = 2000"))
        conn.execute(text("SELECT 1"))
        conn.rollback()


async def database_healthy(db: Database | None, timeout: float = PROBE_TIMEOUT) -> bool:
    if db is None:
        return False
    try:
        # The thread may outlive the wait (a connect hanging); the answer does not.
        await asyncio.wait_for(run_in_threadpool(_select_one, db), timeout)
        return True
    except Exception as exc:
        log.warning("readiness: database check failed: %s", type(exc).__name__)
        return False


async def temporal_healthy(client: Client | None, timeout: float = PROBE_TIMEOUT) -> bool:
    if client is None:
        return False
    try:
        check = client.service_client.check_health(timeout=timedelta(seconds=timeout))
        return bool(await asyncio.wait_for(check, timeout))
    except Exception as exc:
        log.warning("readiness: Temporal check failed: %s", type(exc).__name__)
        return False


class QueueFigures(BaseModel):
    """The task queue as Temporal sees it; a figure is null when Temporal did not answer."""

    task_queue: str
    open_workflows: int | None = None
    workflow_pollers: int | None = None
    activity_pollers: int | None = None


async def _bounded(call: Awaitable[T], timeout: float) -> T | None:
    try:
        return await asyncio.wait_for(call, timeout)
    except Exception as exc:
        log.warning("admin stats: Temporal query failed: %s", type(exc).__name__)
        return None


async def queue_figures(client: Client | None, task_queue: str, timeout: float = PROBE_TIMEOUT) -> QueueFigures:
    figures = QueueFigures(task_queue=task_queue)
    if client is None:
        return figures
    rpc_timeout = timedelta(seconds=timeout)
    quoted = task_queue.replace("\\", "\\\\").replace("'", "\\'")
    query = f"TaskQueue = '{quoted}' AND ExecutionStatus = 'Running'"

    async def pollers(kind: TaskQueueType.ValueType) -> int:
        request = DescribeTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=task_queue), task_queue_type=kind
        )
        described = await client.workflow_service.describe_task_queue(request, timeout=rpc_timeout)
        return len(described.pollers)

    count, workflow, activity = await asyncio.gather(
        _bounded(client.count_workflows(query, rpc_timeout=rpc_timeout), timeout),
        _bounded(pollers(TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW), timeout),
        _bounded(pollers(TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY), timeout),
    )
    figures.open_workflows = count.count if count is not None else None
    figures.workflow_pollers, figures.activity_pollers = workflow, activity
    return figures
