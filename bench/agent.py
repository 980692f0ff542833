"""Agent mode's orchestration overhead over the model's own latency (issue 15's figure).

forgeflow-fake answers every request after a fixed delay, so the model's latency on the
critical path is known: clarify, spec and plan make one request each, one after another.
The same run creates projects of one template both ways, alternately, through the same API
and worker: what agent mode adds to a project's time, beyond the template path's own work,
divided by the model's latency on that path. 1.00x: forgeflow adds nothing of its own; the
target is <= 1.10x (each request's activity, the phases' prepare, record and store local
activities, the workflow's own handling of each response, and the template's clarify and
decompose steps the agent path takes one by one together cost at most a tenth of the
model's time). ``python -m bench --only agent`` measures this figure alone."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from bench.figures import api_client, create, wait_ready
from bench.stack import Stack, wait_for_port
from forgeflow.ports import free_port

if TYPE_CHECKING:
    from bench.runner import Config

TEMPLATE = "empty"  # built in: the template path adds little, so the phases stand out
REQUESTS_ON_PATH = 3  # clarify, spec, plan: one model request each, in sequence
MODEL = "forgeflow-fake"


def llm_env(port: int) -> dict[str, str]:
    return {
        "FORGEFLOW_LLM_BASE_URL": f"http://127.0.0.1:{port}/v1",
        "FORGEFLOW_LLM_API_KEY": "fake",
        "FORGEFLOW_LLM_MODEL": MODEL,
    }


async def agent_overhead(stack: Stack, key: str, *, runs: int, delay: float) -> dict[str, Any]:
    port = free_port()
    fake = stack.start(
        "fake-llm", [sys.executable, "-m", "agents.fake_llm", "--port", str(port), "--delay", str(delay)], port=port
    )
    wait_for_port(port, fake)
    queue = "bench-agent"
    env = stack.forgeflow_env(task_queue=queue) | llm_env(port)
    worker = stack.start("agent-worker", [sys.executable, "-m", "forgeflow", "worker"], env)
    api = stack.start_api("agent-api", FORGEFLOW_TASK_QUEUE=queue, **llm_env(port))
    wait_for_port(api.port or 0, api)
    template_s: list[float] = []
    agent_s: list[float] = []
    try:
        async with api_client(api.url, key) as http:
            for n in range(runs + 1):  # the first pair warms both paths up and is not counted
                template_body = {"project_name": f"Agent bench {n}", "template": TEMPLATE}
                agent_body = {**template_body, "prompt": "A small widget library.", "agent": {}}
                for body, times in ((template_body, template_s), (agent_body, agent_s)):
                    started = time.perf_counter()
                    await wait_ready(http, await create(http, body))
                    if n:
                        times.append(time.perf_counter() - started)
    finally:
        for proc in (api, worker, fake):
            stack.stop(proc)
    template_p50, agent_p50 = statistics.median(template_s), statistics.median(agent_s)
    model_s = REQUESTS_ON_PATH * delay
    return {
        "runs": runs,
        "model_delay_s": delay,
        "model_latency_on_path_s": model_s,
        "template_p50_s": round(template_p50, 4),
        "agent_p50_s": round(agent_p50, 4),
        "agent_added_s": round(agent_p50 - template_p50, 4),
        "ratio": round((agent_p50 - template_p50) / model_s, 3),
        "template_s": [round(s, 4) for s in template_s],
        "agent_s": [round(s, 4) for s in agent_s],
    }


async def run_agent(stack: Stack, config: Config) -> dict[str, Any]:
    """This figure alone (``--only agent``): a Temporal server and a database, then the
    agent worker, API and forgeflow-fake that ``agent_overhead`` starts for itself."""
    from bench.runner import log

    raw: dict[str, Any] = {"config": asdict(config)}
    log(f"starting Temporal and a {config.db} database in {stack.run_dir}")
    stack.start_temporal()
    await asyncio.to_thread(stack.setup_database)
    key, _owner_id = stack.create_key()
    log(f"agent mode: {config.agent_runs} projects each way, the model {config.agent_model_delay_s} s a request")
    raw["agent"] = await agent_overhead(stack, key, runs=config.agent_runs, delay=config.agent_model_delay_s)
    return raw
