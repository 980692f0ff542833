"""Pricing and the budget check: the price tables through Pydantic AI, FORGEFLOW_LLM_PRICES
first, and an unpriced request that never passes for free."""

from __future__ import annotations

import pytest
from pydantic_ai.usage import RequestUsage

from agents.budget import budget_exceeded
from agents.pricing import request_cost
from agents.types import AgentBudget, Spend
from forgeflow.settings import LlmPrice, Settings

USAGE = RequestUsage(input_tokens=1_000, output_tokens=500)


def test_a_known_model_is_priced_by_the_tables_even_behind_another_url():
    cost = request_cost(USAGE, model="gpt-4o-mini", provider="openai", provider_url="http://127.0.0.1:9/v1/")
    assert cost == pytest.approx((1_000 * 0.15 + 500 * 0.6) / 1e6)


def test_configured_prices_come_first_under_either_name():
    prices = {"my-model": LlmPrice(input=2, output=8)}
    expected = (1_000 * 2 + 500 * 8) / 1e6
    assert request_cost(USAGE, model="my-model", overrides=prices) == pytest.approx(expected)
    # The response may name a dated variant of the configured model.
    assert request_cost(USAGE, model="my-model-2026-01", also_known_as="my-model", overrides=prices) == pytest.approx(
        expected
    )
    # And they override the tables.
    cheap = {"gpt-4o-mini": LlmPrice(input=0, output=0)}
    assert request_cost(USAGE, model="gpt-4o-mini", provider="openai", overrides=cheap) == 0.0


def test_an_unknown_model_is_unpriced_never_free():
    assert request_cost(USAGE, model="forgeflow-fake", provider="openai", provider_url="http://127.0.0.1:9/v1") is None


def test_prices_come_from_the_environment_as_json(monkeypatch):
    monkeypatch.setenv("FORGEFLOW_LLM_PRICES", '{"local-llama": {"input": 0.1, "output": 0.2}}')
    assert Settings().llm_prices == {"local-llama": LlmPrice(input=0.1, output=0.2)}


@pytest.mark.parametrize(
    ("budget", "spent", "limits"),
    [
        (AgentBudget(), Spend(total_tokens=10**9, cost_usd=1e6, unpriced_requests=3), None),
        (AgentBudget(max_total_tokens=100), Spend(total_tokens=99), None),
        (AgentBudget(max_total_tokens=100), Spend(total_tokens=100), ["max_total_tokens"]),
        (AgentBudget(max_cost_usd=1.0), Spend(cost_usd=0.99), None),
        (AgentBudget(max_cost_usd=1.0), Spend(cost_usd=1.0), ["max_cost_usd"]),
        # An unpriced request exceeds a cost budget whatever was spent, and only a cost budget.
        (AgentBudget(max_cost_usd=1.0), Spend(unpriced_requests=1, unpriced_models=["x"]), ["max_cost_usd"]),
        (AgentBudget(max_total_tokens=100), Spend(unpriced_requests=1), None),
        (
            AgentBudget(max_total_tokens=1, max_cost_usd=0.0),
            Spend(total_tokens=5),
            ["max_total_tokens", "max_cost_usd"],
        ),
    ],
)
def test_the_budget_check(budget: AgentBudget, spent: Spend, limits: list[str] | None):
    found = budget_exceeded(budget, spent)
    assert (found.limits if found else None) == limits


def test_an_unpriced_model_is_named():
    found = budget_exceeded(AgentBudget(max_cost_usd=5), Spend(unpriced_requests=2, unpriced_models=["my-model"]))
    assert found is not None
    assert "2 request(s) could not be priced (model my-model is not in the price tables" in found.message
    assert "FORGEFLOW_LLM_PRICES" in found.message
