"""Coding agents' figures (issue 16): the parallel speed-up of a 4-wide plan, and
forgeflow's own time per task beside the agent's. ``python -m bench --only coding``
measures them alone.

forgeflow-fake answers the questions and the spec at once and plans every project the same
way (``--plan``); forgeflow's fake coding agent (agents/fake_coder.py) works a fixed time on
each task in the real sandbox, and forgeflow does all it does for a real agent: a work tree
from the dependencies' merged commit, the sandbox, the scope checks, the commit and its
bundle, the task records, and the merge of every branch at the end.

* **Speed-up**: the same four tasks, once independent (4-wide, ``max_parallel_tasks`` 4) and
  once each depending on the one before (one after another); the figure is the second's
  tasks phase over the first's (target >= 3.5x).
* **Overhead per task**: in the chain, what the tasks phase takes beyond the agent's own
  time, per task, as a share of the agent's own time (target <= 5 % of a 2-second task).
  The agent's own time is measured in the same run, after each chained project: the same
  command (same argv, ``--sleep``, clean environment, prompt on stdin, work tree as its
  working directory) run directly, four times one after another, outside forgeflow. The
  fake agent is a Python program: its interpreter's start is the agent's time, as a real
  agent's start is, not forgeflow's. The overhead counts everything forgeflow does between
  one agent's end and the next one's start (the sandbox's start included), and the
  workspace the first task starts from.

The tasks phase is read from the run's Temporal history: from the workspace activity's
scheduling to the last task activity's completion."""

from __future__ import annotations

import asyncio
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.agent import llm_env
from bench.figures import api_client, create, wait_ready
from bench.stack import Stack, wait_for_port
from engine.sandbox import clean_env
from forgeflow.ports import free_port
from workflows import workflow_id_for
from workflows.coding_types import PREPARE_WORKSPACE, RUN_CODING_TASK

if TYPE_CHECKING:
    from temporalio.client import Client

    from bench.runner import Config

TASKS = ("alpha", "beta", "gamma", "delta")


def plan(*, chained: bool) -> dict[str, Any]:
    return {
        "tasks": [
            {
                "id": name,
                "title": f"Build {name}",
                "instructions": f"Write the {name} module.",
                "path_scope": [f"{name}/**"],
                "dependencies": [TASKS[n - 1]] if chained and n else [],
            }
            for n, name in enumerate(TASKS)
        ]
    }


async def tasks_phase(client: Client, project_id: int) -> dict[str, float]:
    """From the workspace's scheduling to the last task's completion, in the run's history
    (the server's own timestamps, to the millisecond), and where that time went: inside
    the task activities (the agent and forgeflow's work around it) and outside them."""
    history = await client.get_workflow_handle(workflow_id_for(project_id)).fetch_history()
    scheduled: dict[int, tuple[str, float]] = {}
    started: dict[int, float] = {}
    start = end = None
    inside = 0.0
    for event in history.events:
        at = event.event_time.ToDatetime().timestamp()
        if event.HasField("activity_task_scheduled_event_attributes"):
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = (name, at)
            if name == PREPARE_WORKSPACE and start is None:
                start = at
        elif event.HasField("activity_task_started_event_attributes"):
            started[event.activity_task_started_event_attributes.scheduled_event_id] = at
        elif event.HasField("activity_task_completed_event_attributes"):
            done = event.activity_task_completed_event_attributes.scheduled_event_id
            if scheduled.get(done, ("", 0.0))[0] == RUN_CODING_TASK:
                end = at
                inside += at - started.get(done, scheduled[done][1])
    if start is None or end is None:
        raise RuntimeError(f"project {project_id}: no coding tasks in its history")
    return {"phase_s": end - start, "in_task_activities_s": inside}


def coder_argv(src: Path, agent_s: float) -> list[str]:
    """The fake agent's argv template, as FORGEFLOW_AGENT_COMMAND gives it to forgeflow."""
    return [
        sys.executable,
        str(src / "agents" / "fake_coder.py"),
        "--sleep",
        str(agent_s),
        "{prompt_file}",
        "{workdir}",
    ]


def agent_alone(src: Path, agent_s: float) -> list[float]:
    """The agent's own time: each task's run of the same command, one after another, with
    none of forgeflow around it (no sandbox, no git, no Temporal); as the sandbox runs it,
    in its work tree, with the prompt file also on stdin and a clean environment."""
    times = []
    with tempfile.TemporaryDirectory(prefix="ff-bench-agent-") as tmp:
        for n, name in enumerate(TASKS):
            workdir, prompt = Path(tmp, name), Path(tmp, f"{name}.md")
            workdir.mkdir()
            # What the fake agent reads of forgeflow's prompt: its slug and its scope.
            prompt.write_text(
                f"# Task {n + 1} of {len(TASKS)}: {name}\n\n- `{name}/**`\n\n## The files that must exist\n"
            )
            values = {"{prompt_file}": str(prompt), "{workdir}": str(workdir)}
            argv = [values.get(arg, arg) for arg in coder_argv(src, agent_s)]
            with prompt.open("rb") as stdin:
                started = time.perf_counter()
                subprocess.run(argv, cwd=workdir, env=clean_env(tmp), stdin=stdin, capture_output=True, check=True)
                times.append(time.perf_counter() - started)
    return times


async def one_shape(
    stack: Stack, key: str, *, chained: bool, runs: int, agent_s: float
) -> tuple[list[dict[str, float]], list[float]]:
    """Each counted project's tasks phase; in the chain, the agent's own runs too, measured
    right after each project, under the same load."""
    shape = "chain" if chained else "wide"
    plan_file = stack.run_dir / f"plan-{shape}.json"
    plan_file.write_text(json.dumps(plan(chained=chained)))
    port = free_port()
    fake = stack.start(
        f"fake-llm-{shape}",
        [sys.executable, "-m", "agents.fake_llm", "--port", str(port), "--plan", str(plan_file)],
        port=port,
    )
    wait_for_port(port, fake)
    src = stack.src_dir
    coder = shlex.join(coder_argv(src, agent_s))
    queue = f"bench-coding-{shape}"
    agent_env = {
        "FORGEFLOW_CODING_AGENT": "command",
        "FORGEFLOW_AGENT_COMMAND": coder,
        "FORGEFLOW_AGENT_READ_ONLY": str(src),
        "FORGEFLOW_MAX_PARALLEL_TASKS": "4",
    }
    env = stack.forgeflow_env(task_queue=queue) | llm_env(port) | agent_env
    worker = stack.start(f"coding-worker-{shape}", [sys.executable, "-m", "forgeflow", "worker"], env)
    api = stack.start_api(f"coding-api-{shape}", FORGEFLOW_TASK_QUEUE=queue, **llm_env(port), **agent_env)
    wait_for_port(api.port or 0, api)
    phases: list[dict[str, float]] = []
    alone: list[float] = []
    client = await stack.client()
    try:
        async with api_client(api.url, key) as http:
            for n in range(runs + 1):  # the first warms the worker up and is not counted
                body = {"project_name": f"Coding bench {shape} {n}", "template": "empty", "prompt": "Four modules."}
                project_id = await create(http, {**body, "agent": {}})
                await wait_ready(http, project_id)
                if n:
                    phases.append(await tasks_phase(client, project_id))
                    if chained:
                        alone += await asyncio.to_thread(agent_alone, src, agent_s)
    finally:
        for proc in (api, worker, fake):
            stack.stop(proc)
    return phases, alone


async def coding_figures(stack: Stack, key: str, *, runs: int, agent_s: float) -> dict[str, Any]:
    wide, _ = await one_shape(stack, key, chained=False, runs=runs, agent_s=agent_s)
    chain, alone = await one_shape(stack, key, chained=True, runs=runs, agent_s=agent_s)
    wide_p50 = statistics.median(p["phase_s"] for p in wide)
    chain_p50 = statistics.median(p["phase_s"] for p in chain)
    agent_run = statistics.median(alone)  # the agent's own time per task: its --sleep and its start
    per_task = (chain_p50 - len(TASKS) * agent_run) / len(TASKS)
    # Of that, inside the task activities (work tree, sandbox, commit, records) and outside.
    inside = (statistics.median(p["in_task_activities_s"] for p in chain) - len(TASKS) * agent_run) / len(TASKS)
    return {
        "runs": runs,
        "agent_s": agent_s,
        "agent_run_p50_s": round(agent_run, 4),
        "tasks": len(TASKS),
        "wide_tasks_phase_p50_s": round(wide_p50, 3),
        "chain_tasks_phase_p50_s": round(chain_p50, 3),
        "speedup": round(chain_p50 / wide_p50, 3),
        "overhead_per_task_s": round(per_task, 4),
        "overhead_per_task_ratio": round(per_task / agent_run, 4),
        "overhead_in_task_activity_s": round(inside, 4),
        "wide_s": [round(p["phase_s"], 3) for p in wide],
        "chain_s": [round(p["phase_s"], 3) for p in chain],
        "agent_run_s": [round(t, 4) for t in alone],
    }


async def run_coding(stack: Stack, config: Config) -> dict[str, Any]:
    """This figure alone: a Temporal server and a database, then what coding_figures starts."""
    from bench.runner import log

    raw: dict[str, Any] = {"config": asdict(config)}
    log(f"starting Temporal and a {config.db} database in {stack.run_dir}")
    stack.start_temporal()
    await asyncio.to_thread(stack.setup_database)
    key, _owner_id = stack.create_key()
    log(f"coding agents: {config.coding_runs} projects each shape, the agent {config.coding_agent_s} s a task")
    raw["coding"] = await coding_figures(stack, key, runs=config.coding_runs, agent_s=config.coding_agent_s)
    return raw
