"""A run's state, in one object: what the run knows, what its queries answer and what its
updates' validators read. Only the workflow changes it, in the order a reader of
``project_generation.py`` sees."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agents.types import Spend
    from workflows.agent_types import AgentBudget
    from workflows.types import (
        DecisionRecord,
        EventRecord,
        Phase,
        ProjectGenerationInput,
        ProjectStatus,
        QuestionModel,
        SpecRecord,
        TaskUpdate,
        VerifyResult,
        WebhookDelivery,
    )

DecisionKind = Literal["approve", "reject", "regenerate"]


@dataclass(frozen=True)
class Decision:
    """A review decision the run has accepted and not yet acted on."""

    kind: DecisionKind
    notes: str
    version: int  # the spec version; at the build's review (AWAITING_REVIEW), its round


@dataclass
class Pending:
    """What rides along with the next status write: one database transaction instead of
    one per phase on the way to the first task."""

    events: list[EventRecord] = field(default_factory=list)
    spec: SpecRecord | None = None
    decision: DecisionRecord | None = None
    started: datetime | None = None
    verification: VerifyResult | None = None


@dataclass
class RunState:
    # Where the run stands, as last stored (a query, a validator and the API's database
    # read never disagree about it).
    status: ProjectStatus = ProjectStatus.QUEUED
    phase: Phase = Phase.QUEUED
    paused: bool = False
    error: str = ""
    # Status writes are numbered across runs, so a retry's writes always land after
    # everything the earlier run wrote; ``stored`` counts this run's writes on record.
    seq: int = 0
    stored: int = 0
    # The gate a client may act on now (AWAITING_ANSWERS, AWAITING_APPROVAL, AWAITING_REVIEW
    # or AWAITING_BUDGET) once the write entering it is stored, None again the moment an
    # answer or decision is accepted.
    open_gate: Phase | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    answers_received: bool = False
    questions: list[QuestionModel] = field(default_factory=list)
    decision: Decision | None = None
    feedback: list[str] = field(default_factory=list)
    spec_version: int = 0
    spec_key: str | None = None
    tasks_total: int = 0
    tasks_done: int = 0
    task_states: dict[str, str] = field(default_factory=dict)
    failed_task: TaskUpdate | None = None
    pending: Pending = field(default_factory=Pending)
    events_made: int = 0
    notified_status: ProjectStatus | None = None
    webhooks: list[tuple[WebhookDelivery, asyncio.Task[None]]] = field(default_factory=list)
    webhooks_hurried: bool = False  # a cancel after the run's end: its deliveries go on elsewhere at once
    # Agent mode: the model budget (raised by the raise_budget update while the run waits at
    # AWAITING_BUDGET) and the project's spend as the last phase reported it.
    budget: AgentBudget | None = None
    budget_raised: bool = False
    spent: Spend = field(default_factory=Spend)
    # Coding agents (workflows/fixes.py): the build's review round open or last opened (the
    # ``version`` a decision at AWAITING_REVIEW names), and the fix tasks made so far.
    review_round: int = 0
    fixes: int = 0

    @classmethod
    def starting(cls, input: ProjectGenerationInput) -> RunState:
        return cls(
            seq=(input.run_number - 1) * 1_000_000,
            answers=dict(input.answers),
            feedback=list(input.feedback),
            spec_version=(input.approved_spec_version or input.first_spec_version) - 1,
            budget=input.agent.budget if input.agent else None,
        )
