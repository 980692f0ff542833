"""Agent mode's fixtures: forgeflow-fake on 127.0.0.1 (a real HTTP server, scripted per
test), settings pointing the worker at it, and a real worker on the test's own queue."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import pytest_asyncio
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.worker import Worker

from agents.fake_llm import FakeLlm
from agents.types import AGENT_PHASE_WORKFLOW, AgentPhase, AgentPhaseInput, AgentPhaseResult, ProjectBrief
from forgeflow.settings import Settings
from forgeflow.worker import build_worker
from store.db import Database


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeLlm]:
    async with FakeLlm() as server:
        yield server


@pytest.fixture
def llm_settings(settings: Settings, fake: FakeLlm) -> Settings:
    return settings.model_copy(
        update={
            "llm_base_url": fake.url,
            "llm_api_key": SecretStr("test-key"),
            "llm_model": "test-model",
            "llm_output_retries": 2,
            "llm_max_attempts": 3,
            "llm_request_timeout_seconds": 10.0,
        }
    )


@pytest_asyncio.fixture
async def agent_worker(client: Client, llm_settings: Settings, db: Database) -> AsyncIterator[Worker]:
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with build_worker(client, llm_settings, db=db, executor=executor) as worker:
            yield worker


@pytest.fixture
def project_id(project_row: Callable[..., tuple[Any, int]]) -> int:
    return project_row()[1]


def phase_input(project_id: int, phase: AgentPhase, **fields: Any) -> AgentPhaseInput:
    brief = fields.pop(
        "brief", ProjectBrief(name="Widget Lib", slug="widget_lib", description="A small widget library.")
    )
    return AgentPhaseInput(project_id=project_id, phase=phase, template="widget-lib", brief=brief, **fields)


@pytest.fixture
def run_phase(
    client: Client, llm_settings: Settings, agent_worker: Worker
) -> Callable[..., Awaitable[AgentPhaseResult]]:
    async def run(input: AgentPhaseInput) -> AgentPhaseResult:
        result: AgentPhaseResult = await client.execute_workflow(
            AGENT_PHASE_WORKFLOW,
            input,
            id=f"agent-test-{uuid.uuid4().hex[:12]}",
            task_queue=llm_settings.task_queue,
            result_type=AgentPhaseResult,
        )
        return result

    return run
