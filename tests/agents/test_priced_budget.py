"""A cost budget on a model priced by FORGEFLOW_LLM_PRICES."""

from __future__ import annotations

import pytest

from agents.types import AgentBudget, AgentPhase
from forgeflow.settings import LlmPrice
from store.usage import usage_summary
from tests.agents.conftest import phase_input


@pytest.fixture
def llm_settings(llm_settings):
    """forgeflow-fake at a price of its own (FORGEFLOW_LLM_PRICES), in USD per million tokens."""
    return llm_settings.model_copy(update={"llm_prices": {"forgeflow-fake": LlmPrice(input=2.0, output=8.0)}})


async def test_a_cost_budget_is_counted_in_the_configured_prices(run_phase, fake, project_id, db):
    first = await run_phase(phase_input(project_id, AgentPhase.CLARIFY, budget=AgentBudget(max_cost_usd=1e-9)))
    usage = first.requests[0]
    assert usage.cost_usd == pytest.approx((usage.input_tokens * 2.0 + usage.output_tokens * 8.0) / 1e6)
    assert first.status == "completed"  # the request that crossed the line

    stopped = await run_phase(phase_input(project_id, AgentPhase.SPEC, budget=AgentBudget(max_cost_usd=1e-9)))
    assert stopped.status == "budget_exceeded" and stopped.budget_exceeded.limits == ["max_cost_usd"]
    assert stopped.spent.cost_usd == pytest.approx(usage.cost_usd) and len(fake.received) == 1
    with db.session() as session:
        assert usage_summary(session, project_id=project_id).totals.cost_usd == pytest.approx(usage.cost_usd)
