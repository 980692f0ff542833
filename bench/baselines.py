"""Baselines measured in the same run: the cookiecutter library in-process, and the bare
workflow (bench/bare.py) for latency, throughput and fan-out."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client

from bench.bare import BareInput, BareTask, BareWorkflow
from engine.context import build_context, validate_answers
from engine.plan import decompose
from engine.templates import load_template


def plan_shape(template_id: str, answers: dict[str, Any], template_path: str = "") -> list[BareTask]:
    """The task DAG forgeflow's decompose produces for these answers, as bare tasks."""
    template = load_template(template_id, template_path=template_path)
    plan = decompose(template, build_context(template, validate_answers(template, answers)))
    return [BareTask(t.id, list(t.dependencies)) for t in plan.tasks]


class Cookiecutter:
    """The cookiecutter library rendering the template in-process, plus a ZIP of the result."""

    def __init__(self, template_dir: Path, answers: dict[str, Any], work: Path) -> None:
        self.template_dir, self.answers, self.work = template_dir, answers, work
        work.mkdir(parents=True, exist_ok=True)
        self.config = work / "cookiecutter-config.yaml"
        self.config.write_text(f"cookiecutters_dir: {work / 'cookiecutters'}\nreplay_dir: {work / 'replay'}\n")
        self.runs = 0

    def once(self) -> float:
        """Seconds for one render + ZIP (the output is removed afterwards, untimed)."""
        from cookiecutter.main import cookiecutter

        self.runs += 1
        out = self.work / f"render-{self.runs}"
        start = time.perf_counter()
        project = cookiecutter(
            str(self.template_dir),
            no_input=True,
            extra_context=self.answers,
            output_dir=str(out),
            config_file=str(self.config),
        )
        shutil.make_archive(str(out / "project"), "zip", root_dir=out, base_dir=Path(project).name)
        elapsed = time.perf_counter() - start
        shutil.rmtree(out)
        return elapsed


async def _start(client: Client, task_queue: str, tasks: list[BareTask], bound: int) -> Any:
    return await client.start_workflow(
        BareWorkflow.run,
        BareInput(tasks=tasks, max_parallel_tasks=bound),
        id=f"bare-{uuid.uuid4().hex[:12]}",
        task_queue=task_queue,
    )


async def bare_once(client: Client, task_queue: str, tasks: list[BareTask], bound: int) -> tuple[float, Any]:
    """Seconds for one bare run, start to result; and its handle."""
    start = time.perf_counter()
    handle = await _start(client, task_queue, tasks, bound)
    await handle.result()
    return time.perf_counter() - start, handle


async def bare_throughput(client: Client, task_queue: str, tasks: list[BareTask], bound: int, count: int) -> float:
    """Seconds from starting ``count`` bare workflows at once until every one finished."""
    start = time.perf_counter()
    handles = await asyncio.gather(*(_start(client, task_queue, tasks, bound) for _ in range(count)))
    await asyncio.gather(*(h.result() for h in handles))
    return time.perf_counter() - start


async def bare_fanout(client: Client, task_queue: str, tasks: list[BareTask], bound: int) -> dict[str, Any]:
    start = time.perf_counter()
    handle = await _start(client, task_queue, tasks, bound)
    activities = await handle.result()
    wall = time.perf_counter() - start
    return {"wall_s": wall, "activities": activities, **(await history_stats(handle))}


async def history_stats(handle: Any) -> dict[str, Any]:
    """Events, bytes, whether the server suggested continue-as-new (its history warning),
    and per activity type: count and seconds from scheduled to completed (sum, max)."""
    history = await handle.fetch_history()
    size = 0
    suggested = False
    scheduled: dict[int, tuple[str, float]] = {}
    activities: dict[str, dict[str, float]] = {}
    for event in history.events:
        at = event.event_time.ToNanoseconds() / 1e9
        if event.HasField("workflow_task_started_event_attributes"):
            attrs = event.workflow_task_started_event_attributes
            size = max(size, attrs.history_size_bytes)
            suggested = suggested or attrs.suggest_continue_as_new
        elif event.HasField("activity_task_scheduled_event_attributes"):
            scheduled[event.event_id] = (event.activity_task_scheduled_event_attributes.activity_type.name, at)
        elif event.HasField("activity_task_completed_event_attributes"):
            name, since = scheduled[event.activity_task_completed_event_attributes.scheduled_event_id]
            stats = activities.setdefault(name, {"count": 0, "total_s": 0.0, "max_s": 0.0})
            stats["count"] += 1
            stats["total_s"] += at - since
            stats["max_s"] = max(stats["max_s"], at - since)
    first, last = history.events[0].event_time.ToNanoseconds(), history.events[-1].event_time.ToNanoseconds()
    return {
        "history_events": len(history.events),
        "history_bytes": size,
        "suggest_continue_as_new": suggested,
        "workflow_s": (last - first) / 1e9,
        "activities": activities,
    }
