"""A model request that outlives its timeout is abandoned and sent again by Temporal."""

from __future__ import annotations

import pytest

from agents.fake_llm import Reply
from agents.types import AgentPhase
from tests.agents.conftest import phase_input


@pytest.fixture
def llm_settings(llm_settings):
    return llm_settings.model_copy(update={"llm_request_timeout_seconds": 1.0})


async def test_a_timed_out_request_is_retried_with_backoff(run_phase, fake, project_id):
    fake.script(Reply(delay=5))
    result = await run_phase(phase_input(project_id, AgentPhase.CLARIFY))

    assert result.status == "completed" and len(result.requests) == 1
    assert [r.status for r in fake.received] == [-1, 200]  # the first attempt's client gave up on it
    assert fake.received[0].digest == fake.received[1].digest
