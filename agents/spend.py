"""One model request's (or one coding agent run's) usage put on record, once, and the
project's spend right after it: what the next budget check reads; and a model request's
price. Shared by the agent phases' activities and the coding agents' task activities."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from pydantic_ai.usage import RequestUsage

from activities.base import permanent
from activities.task_records import until_stored
from agents.budget import spend_of
from agents.pricing import request_cost
from agents.provider import LlmConfig
from agents.types import Spend
from store.db import Database
from store.projects import ProjectMissing
from store.usage import NewUsage, project_spend, record_usage


def recorded_spend(db: Database, usage: NewUsage) -> Spend:
    """Store ``usage`` (a retried recording changes nothing) and return the project's spend
    on record, read in the same transaction; waits out a database outage."""
    spent: list[Spend] = []

    def write() -> None:
        with db.session(write_lock=True) as session:
            record_usage(session, usage=usage, at=datetime.now(UTC))
            spent[:] = [spend_of(project_spend(session, project_id=usage.project_id))]

    try:
        until_stored(write)
    except ProjectMissing as exc:
        raise permanent(str(exc), "ProjectMissing") from exc
    return spent[0]


class AnsweredRequest(Protocol):
    """A model response's usage as a request's record carries it (agents.types
    RecordRequestInput, agents.coding.builtin_types RecordBuiltinInput)."""

    @property
    def key(self) -> str: ...
    @property
    def project_id(self) -> int: ...
    @property
    def run_number(self) -> int: ...
    @property
    def task_id(self) -> str | None: ...
    @property
    def number(self) -> int: ...

    @property
    def model(self) -> str: ...
    @property
    def provider(self) -> str | None: ...
    @property
    def provider_url(self) -> str | None: ...
    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def cache_read_tokens(self) -> int: ...
    @property
    def cache_write_tokens(self) -> int: ...
    @property
    def responded_at(self) -> datetime | None: ...


def request_price(config: LlmConfig, request: AnsweredRequest) -> float | None:
    """The request's cost in USD from the price tables (and FORGEFLOW_LLM_PRICES) as they
    were when it was answered; None: no table knows the model."""
    usage = RequestUsage(
        input_tokens=request.input_tokens,
        output_tokens=request.output_tokens,
        cache_read_tokens=request.cache_read_tokens,
        cache_write_tokens=request.cache_write_tokens,
    )
    return request_cost(
        usage,
        model=request.model,
        also_known_as=config.model,
        provider=request.provider,
        provider_url=request.provider_url,
        at=request.responded_at,
        overrides=config.prices,
    )


def priced_usage(config: LlmConfig, request: AnsweredRequest, *, phase: str) -> NewUsage:
    """The request's usage row, priced (:func:`request_price`), for :func:`recorded_spend`."""
    return NewUsage(
        key=request.key,
        project_id=request.project_id,
        run_number=request.run_number,
        phase=phase,
        task_id=request.task_id,
        number=request.number,
        model=request.model,
        input_tokens=request.input_tokens,
        output_tokens=request.output_tokens,
        cost_usd=request_price(config, request),
    )
