"""kill -9 of the worker during a slow model request: a new worker finishes the phase, and
only that request is sent again; completed requests never are (counted at the fake)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from temporalio.client import Client

from agents.fake_llm import FakeLlm, Reply
from agents.types import AGENT_PHASE_WORKFLOW, AgentPhase, AgentPhaseResult
from forgeflow.settings import Settings
from store.db import Database
from store.usage import list_usage
from tests.agents.conftest import phase_input
from tests.agents.test_budget import CYCLIC

REPO = Path(__file__).resolve().parents[2]
SLOW = 20.0  # seconds the third request takes: long enough for the kill to land mid-request


class WorkerProcess:
    """``python -m forgeflow worker`` in a process group of its own, configured by environment."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "forgeflow", "worker"],
                env=env,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def worker_env(settings: Settings, fake: FakeLlm) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGEFLOW_")}
    env.update(
        {
            "FORGEFLOW_DATA_DIR": str(settings.data_dir),
            "FORGEFLOW_DATABASE_URL": settings.resolved_database_url,
            "FORGEFLOW_TEMPORAL_ADDRESS": str(settings.temporal_address),
            "FORGEFLOW_NAMESPACE": settings.namespace,
            "FORGEFLOW_TASK_QUEUE": settings.task_queue,
            "FORGEFLOW_TEMPLATE_PATH": settings.template_path,
            "FORGEFLOW_WORKER_METRICS_ADDRESS": "",
            # A dead worker's request is noticed within this long, then sent again.
            "FORGEFLOW_TASK_HEARTBEAT_TIMEOUT": "PT2S",
            "FORGEFLOW_LLM_BASE_URL": fake.url,
            "FORGEFLOW_LLM_API_KEY": "test-key",
            "FORGEFLOW_LLM_MODEL": "test-model",
            "FORGEFLOW_LLM_REQUEST_TIMEOUT_SECONDS": "60",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


async def test_a_worker_killed_mid_request_repeats_only_that_request(
    client: Client, settings: Settings, fake: FakeLlm, worker_env, project_id, db: Database, tmp_path
):
    if not settings.resolved_database_url.startswith("sqlite"):
        pytest.skip("a crash is Temporal's business, not the database's: once is enough")
    workers = [WorkerProcess(worker_env, tmp_path / "worker.log")]
    try:
        spec = await run(client, settings, phase_input(project_id, AgentPhase.SPEC))
        assert len(fake.received) == 1
        fake.script(Reply(arguments=CYCLIC), Reply(delay=SLOW))
        plan = asyncio.create_task(
            run(client, settings, phase_input(project_id, AgentPhase.PLAN, spec_key=spec.output.spec.documents_key))
        )
        await until(lambda: len(fake.received) == 3, "the slow request to arrive")
        workers[0].kill()  # mid-request: the fake is still sleeping on it
        workers.append(WorkerProcess(worker_env, tmp_path / "worker.log"))
        result = await asyncio.wait_for(plan, 60)
    finally:
        for worker in workers:
            worker.kill()
        print((tmp_path / "worker.log").read_text()[-3000:])

    assert result.status == "completed" and result.output.plan.tasks
    sent = Counter(r.digest for r in fake.received)
    first, invalid, slow = (r.digest for r in fake.received[:3])
    assert sent[first] == 1 and sent[invalid] == 1  # completed requests: sent once, never again
    assert 1 <= sent[slow] <= 2 and len(fake.received) == 4  # the interrupted one, sent again once
    assert fake.received[2].status == -1  # the killed worker never had its answer
    with db.session() as session:  # each completed request on record once
        assert [(u.phase, u.model) for u in list_usage(session, project_id=project_id)] == [
            ("spec", "forgeflow-fake"),
            ("plan", "forgeflow-fake"),
            ("plan", "forgeflow-fake"),
        ]


async def run(client: Client, settings: Settings, input) -> AgentPhaseResult:  # type: ignore[no-untyped-def]
    result: AgentPhaseResult = await client.execute_workflow(
        AGENT_PHASE_WORKFLOW,
        input,
        id=f"agent-crash-{uuid.uuid4().hex[:12]}",
        task_queue=settings.task_queue,
        result_type=AgentPhaseResult,
    )
    return result


async def until(probe, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
