"""What a model request cost: ``FORGEFLOW_LLM_PRICES`` first (per million input and output
tokens, by model name), else the price tables Pydantic AI prices responses with
(genai-prices). A model neither knows is unpriced: None, never 0, so that a cost budget
counts it as exceeded rather than free (agents.budget)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pydantic_ai.messages import ModelResponse
from pydantic_ai.usage import RequestUsage

from forgeflow.settings import LlmPrice

PER_MILLION = 1_000_000


def request_cost(
    usage: RequestUsage,
    *,
    model: str,
    also_known_as: str | None = None,
    provider: str | None = None,
    provider_url: str | None = None,
    at: datetime | None = None,
    overrides: Mapping[str, LlmPrice] | None = None,
) -> float | None:
    """USD for one request, or None when no table prices ``model``. ``also_known_as``: the
    configured model name, when the response names a more specific one (overrides are
    looked up under both)."""
    overrides = overrides or {}
    price = overrides.get(model) or (overrides.get(also_known_as) if also_known_as else None)
    if price is not None:
        return (usage.input_tokens * price.input + usage.output_tokens * price.output) / PER_MILLION
    # A response carrying only what pricing reads; ModelResponse.cost() is Pydantic AI's own
    # lookup (by the endpoint's URL first, then the provider's name).
    response = ModelResponse(parts=[], usage=usage, model_name=model, provider_name=provider, provider_url=provider_url)
    if at is not None:
        response.timestamp = at
    try:
        return float(response.cost().total_price)
    except (LookupError, ValueError):  # unknown model or provider; usage it cannot price
        return None
