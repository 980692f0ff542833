"""Runs every figure against one stack, in an order that keeps them apart:
cookiecutter in-process, e2e latency, throughput with 1 then 2 workers (peak RSS),
fan-out, then the API under load with the workers stopped, then the uncached reads.
``run_reads`` runs the last alone (``--only reads``): a database and API processes only."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import asdict, dataclass
from typing import Any

from temporalio.converter import DataConverter

from bench import baselines, figures
from bench.agent import agent_overhead
from bench.apiload import api_figure
from bench.coding import coding_figures
from bench.fanout_template import TEMPLATE_ID as FANOUT
from bench.fanout_template import write_fanout_template
from bench.reads import reads_figure
from bench.stack import (
    Proc,
    Stack,
    cpu_seconds,
    machine_busy_seconds,
    peak_rss_mb,
    reset_peak_rss,
    wait_for_pollers,
    wait_for_port,
)
from engine.templates import BUILTIN_TEMPLATES_DIR, DEFAULT_TEMPLATE_ID

BARE_QUEUE = "bench-bare"
OWNER_EMAIL = "bench@example.test"


@dataclass
class Config:
    quick: bool = False
    db: str = "sqlite"
    e2e_runs: int = 20
    throughput_projects: int = 200
    fanout_tasks: int = 1000
    api_seconds: float = 10.0
    reads_projects: int = 1000  # seeded for the uncached reads figure
    agent_runs: int = 5  # agent-mode projects (and as many template-mode ones), after a warm-up pair
    agent_model_delay_s: float = 1.0  # forgeflow-fake's latency per request
    coding_runs: int = 3  # coding-agent projects of each shape (4-wide, chain), after a warm-up one
    coding_agent_s: float = 2.0  # the fake coding agent's time per task
    warmup: int = 1  # e2e runs and API loads discarded before measuring
    max_parallel_tasks: int = 4

    @classmethod
    def for_mode(cls, quick: bool, db: str) -> Config:
        if quick:
            return cls(
                quick=True,
                db=db,
                e2e_runs=1,
                throughput_projects=2,
                fanout_tasks=10,
                api_seconds=1.0,
                reads_projects=50,
                agent_runs=1,
                agent_model_delay_s=0.1,
                coding_runs=1,
                coding_agent_s=0.2,
                warmup=0,
            )
        return cls(db=db)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _peaks(procs: list[Proc]) -> dict[str, float]:
    return {p.name: round(peak_rss_mb(p.pid), 1) for p in procs}


async def run(stack: Stack, config: Config) -> dict[str, Any]:
    raw: dict[str, Any] = {"config": asdict(config)}
    stack.max_parallel_tasks = config.max_parallel_tasks
    templates = stack.run_dir / "templates"
    write_fanout_template(templates, config.fanout_tasks)
    stack.template_path = str(templates)

    answers = {**figures.all_flags_request(0), "author_email": OWNER_EMAIL}
    cookiecutter = baselines.Cookiecutter(
        BUILTIN_TEMPLATES_DIR / DEFAULT_TEMPLATE_ID, answers, stack.run_dir / "cookiecutter"
    )
    e2e_shape = baselines.plan_shape(DEFAULT_TEMPLATE_ID, answers)
    fan_shape = baselines.plan_shape(FANOUT, {"project_name": "Fanout Bench"}, stack.template_path)

    log(f"starting Temporal, {config.db} database, API, worker and bare worker in {stack.run_dir}")
    temporal = stack.start_temporal()
    await asyncio.to_thread(stack.setup_database)
    key, owner_id = stack.create_key()
    api = stack.start_api()
    workers = [stack.start_worker(1)]
    bare_workers = [stack.start_bare_worker(BARE_QUEUE, 1)]
    client = await stack.client()
    bare_client = await stack.client(DataConverter.default)
    await asyncio.to_thread(wait_for_port, api.port or 0, api)
    await wait_for_pollers(client, "forgeflow", workers)
    await wait_for_pollers(client, BARE_QUEUE, bare_workers)
    bound = config.max_parallel_tasks
    http = figures.api_client(api.url, key, connections=max(10, config.throughput_projects))
    try:
        log(f"e2e latency: {config.e2e_runs} sequential projects (+{config.warmup} warm-up), {len(e2e_shape)} tasks")
        # Interleaved (forgeflow, bare, cookiecutter), so that all three see the same load.
        latencies: dict[str, list[float]] = {"forgeflow": [], "bare": [], "cookiecutter": []}
        for n in range(config.warmup + config.e2e_runs):
            seconds, project_id = await figures.e2e_once(http, 1 + n)
            bare_seconds, bare_handle = await baselines.bare_once(bare_client, BARE_QUEUE, e2e_shape, bound)
            cookiecutter_seconds = await asyncio.to_thread(cookiecutter.once)
            if n >= config.warmup:
                latencies["forgeflow"].append(seconds)
                latencies["bare"].append(bare_seconds)
                latencies["cookiecutter"].append(cookiecutter_seconds)
        handle = client.get_workflow_handle(f"project-{project_id}")
        raw["e2e"] = {
            "tasks": len(e2e_shape),
            "latencies_s": latencies,
            "history": await baselines.history_stats(handle),
            "bare_history": await baselines.history_stats(bare_handle),
        }

        raw["throughput"] = {"projects": config.throughput_projects, "forgeflow": {}, "bare": {}}
        peaks: dict[str, float] = {}
        next_id = 1000
        for count in (1, 2):
            if count == 2:
                workers.append(stack.start_worker(2))
                bare_workers.append(stack.start_bare_worker(BARE_QUEUE, 2))
                await wait_for_pollers(client, "forgeflow", workers)
                await wait_for_pollers(client, BARE_QUEUE, bare_workers)
            for proc in (api, *workers):
                reset_peak_rss(proc.pid)
            log(f"throughput: {config.throughput_projects} projects at once, {count} worker(s)")
            procs = [temporal, api, *workers]
            cpu_before, busy_before = [cpu_seconds(p.pid) for p in procs], machine_busy_seconds()
            result = await figures.throughput(http, config.throughput_projects, first=next_id)
            busy_after = machine_busy_seconds()
            result["cpu_s"] = {p.name: round(cpu_seconds(p.pid) - c, 2) for p, c in zip(procs, cpu_before, strict=True)}
            result["machine_cpu_utilisation"] = round(
                (busy_after[0] - busy_before[0]) / (busy_after[1] - busy_before[1]), 3
            )
            next_id += config.throughput_projects
            peaks |= {f"{name} ({count} workers)": mb for name, mb in _peaks([api, *workers]).items()}
            raw["throughput"]["forgeflow"][str(count)] = result
            for proc in bare_workers:
                reset_peak_rss(proc.pid)
            seconds = await baselines.bare_throughput(
                bare_client, BARE_QUEUE, e2e_shape, bound, config.throughput_projects
            )
            peaks |= {f"{name} ({count} workers)": mb for name, mb in _peaks(bare_workers).items()}
            raw["throughput"]["bare"][str(count)] = {
                "projects": config.throughput_projects,
                "wall_s": seconds,
                "projects_per_s": config.throughput_projects / seconds,
            }
        raw["memory"] = {
            "worker_peak_rss_mb": max(mb for name, mb in peaks.items() if name.startswith("worker")),
            "bare_worker_peak_rss_mb": max(mb for name, mb in peaks.items() if name.startswith("bare-worker")),
            "api_peak_rss_mb": max(mb for name, mb in peaks.items() if name.startswith("api")),
            "per_process_mb": peaks,
        }
        for proc in (workers.pop(), bare_workers.pop()):
            stack.stop(proc)

        log(f"fan-out: one project of {config.fanout_tasks} tasks, bound {bound}")
        reset_peak_rss(workers[0].pid)
        fan = await figures.fanout(
            http, client, template=FANOUT, database_url=stack.database_url, owner_id=owner_id, bound=bound
        )
        worker_peak = peak_rss_mb(workers[0].pid)
        bare_fan = await baselines.bare_fanout(bare_client, BARE_QUEUE, fan_shape, bound)
        # The server logs "history size/count exceeds warn limit" past limit.history*.warn
        # (10 MB / 10,240 events by default); it suggests continue-as-new from 4,096 events.
        warnings = [
            line.strip()[:300]
            for line in temporal.log.read_text(errors="replace").splitlines()
            if re.search(r"(?i)exceeds? (the )?warn limit|history (size|count).*(warn|limit)", line)
        ]
        raw["fanout"] = {
            "tasks": len(fan_shape),
            "forgeflow": fan,
            "bare": bare_fan,
            "worker_peak_rss_mb": worker_peak,
            "server_warnings": warnings,
            "history_warning": bool(warnings),
        }

        for proc in [*workers, *bare_workers]:
            stack.stop(proc)
        log(f"agent mode: {config.agent_runs} projects each way, the model {config.agent_model_delay_s} s a request")
        raw["agent"] = await agent_overhead(stack, key, runs=config.agent_runs, delay=config.agent_model_delay_s)
        log(f"coding agents: {config.coding_runs} projects each shape, the agent {config.coding_agent_s} s a task")
        raw["coding"] = await coding_figures(stack, key, runs=config.coding_runs, agent_s=config.coding_agent_s)
        log(f"API: status and list at 50 connections, {config.api_seconds:.0f} s each, vs bare FastAPI")
        raw["api"] = await api_figure(
            stack, api, http, key, project_id, config.api_seconds, config.warmup, status_cache_off=not config.quick
        )
        stack.stop(api)
        await _reads(stack, config, raw)
    finally:
        await http.aclose()
    return raw


async def _reads(stack: Stack, config: Config, raw: dict[str, Any]) -> None:
    log(
        f"uncached reads: {config.reads_projects} projects, status and list at 50 connections, "
        f"{config.api_seconds:.0f} s each, vs bare FastAPI"
    )
    raw["reads"] = await reads_figure(stack, config.reads_projects, config.api_seconds, config.warmup)


async def run_reads(stack: Stack, config: Config) -> dict[str, Any]:
    """The uncached reads figure alone: no Temporal server or workers (the API connects to
    Temporal lazily and serves reads without it)."""
    raw: dict[str, Any] = {"config": asdict(config)}
    log(f"{config.db} database in {stack.run_dir}")
    await asyncio.to_thread(stack.setup_database)
    await _reads(stack, config, raw)
    return raw
