"""The bare baseline: a Temporal workflow with ProjectGenerationWorkflow's shape and no work.

Same activity count and order: a local activity per status transition, then clarify,
write_spec, decompose, one activity per task through the same ``run_dag`` under the same
bound, verify, export and the final transition. Every activity returns at once. Its
worker runs in a subprocess (``python -m bench.bare``) with the forgeflow worker's
executor settings, on its own task queue.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from workflows.dag import run_dag

NOOP = "bench_noop"
NOOP_LOCAL = "bench_noop_local"
PHASES = ("clarify", "spec", "decompose", "tasks", "verify", "export")


@dataclass
class BareTask:
    id: str
    dependencies: list[str] = field(default_factory=list)


@dataclass
class BareInput:
    tasks: list[BareTask]
    max_parallel_tasks: int = 4


@activity.defn(name=NOOP)
def noop(step: str) -> str:
    return step


@activity.defn(name=NOOP_LOCAL)
def noop_local(step: str) -> str:
    return step


@workflow.defn
class BareWorkflow:
    @workflow.run
    async def run(self, input: BareInput) -> int:
        count = 0

        async def transition(phase: str) -> None:
            await workflow.execute_local_activity(NOOP_LOCAL, phase, start_to_close_timeout=timedelta(seconds=30))

        async def step(name: str) -> None:
            nonlocal count
            await workflow.execute_activity(NOOP, name, start_to_close_timeout=timedelta(minutes=5))
            count += 1

        async def task(t: BareTask) -> object:
            await step(t.id)
            return t.id

        for phase in PHASES:
            await transition(phase)
            if phase == "tasks":
                tasks = [BareTask(t.id, list(t.dependencies)) for t in input.tasks]
                await run_dag(tasks, input.max_parallel_tasks, task)  # type: ignore[arg-type]
            else:
                await step(phase)
        await transition("ready")
        return count


async def serve(address: str, task_queue: str) -> None:
    from temporalio.client import Client
    from temporalio.worker import Worker

    client = await Client.connect(address, namespace="default")
    # The forgeflow worker's settings: 16 activity threads, as many concurrent activities.
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="activity") as executor:
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=[BareWorkflow],
            activities=[noop, noop_local],
            activity_executor=executor,
            max_concurrent_activities=16,
        )
        await worker.run()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the bare baseline's worker.")
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.address, args.task_queue))


if __name__ == "__main__":
    main()
