"""run_dag in a workflow on a real Temporal dev server: which failure a DAG reports."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from workflows.dag import DagFailed, run_dag
from workflows.failures import describe
from workflows.types import TaskDefinition, TaskResult

WORKS_UNTIL_CANCELLED, FAILS = "dag_test_works_until_cancelled", "dag_test_fails"


@dataclass
class Reported:
    task_id: str
    error: str


@activity.defn(name=WORKS_UNTIL_CANCELLED)
async def works_until_cancelled(task_id: str) -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(0.1)


@activity.defn(name=FAILS)
async def fails(task_id: str) -> None:
    await asyncio.sleep(0.5)  # its sibling is under way by then
    raise ApplicationError(f"{task_id} broke", non_retryable=True)


def task(task_id: str, sequence: int) -> TaskDefinition:
    return TaskDefinition(
        id=task_id,
        slug=task_id,
        description="",
        dependencies=[],
        path_scope=[],
        expected_outputs=[],
        sequence=sequence,
    )


@workflow.defn(sandboxed=False)
class DagFailureWorkflow:
    @workflow.run
    async def run(self, long_first: bool) -> Reported:
        long, short = task("long", 1), task("short", 2)

        async def run_task(t: TaskDefinition) -> TaskResult:
            await workflow.execute_activity(
                WORKS_UNTIL_CANCELLED if t is long else FAILS,
                t.id,
                start_to_close_timeout=timedelta(minutes=1),
                heartbeat_timeout=timedelta(seconds=2),
            )
            raise AssertionError("not reached")

        try:
            await run_dag([long, short] if long_first else [short, long], 2, run_task)
        except DagFailed as failed:
            return Reported(task_id=failed.task_id, error=describe(failed.cause))
        raise AssertionError("the DAG did not fail")


async def test_the_failure_reported_is_the_task_that_failed_not_a_sibling_cancelled_for_it(client: Client):
    """Before: the long task, first in plan order, was cancelled because its sibling failed,
    and reported as the failure ("task long failed: Activity cancelled")."""
    queue = f"dag-{uuid.uuid4()}"
    async with Worker(
        client, task_queue=queue, workflows=[DagFailureWorkflow], activities=[works_until_cancelled, fails]
    ):
        for long_first in (True, False):
            reported = await client.execute_workflow(
                DagFailureWorkflow.run, long_first, id=f"{queue}-{long_first}", task_queue=queue
            )
            assert reported == Reported(task_id="short", error="short broke")
