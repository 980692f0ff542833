"""Fixtures of the API tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

import api.ratelimit
from agents.fake_llm import FakeLlm

T0 = 1_900_000_040.0  # 20 s into a minute


@pytest.fixture
def clock(monkeypatch):
    """A still clock for the limiter, so that no test straddles a window boundary."""
    now = [T0]
    monkeypatch.setattr(api.ratelimit, "clock", lambda: now[0])
    return now


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeLlm]:
    """forgeflow-fake, the model provider of agent-mode tests: a real HTTP server on a free port."""
    async with FakeLlm() as server:
        yield server
