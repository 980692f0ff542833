"""What the run's update validators check, on the run's real state. A refusal is an
ApplicationError the API turns into 409 ``invalid_state`` (naming the current status and
phase) or 400 ``invalid_payload`` (naming the fields); a signal that fails them is logged
and dropped."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from agents.budget import budget_exceeded
    from workflows.agent_types import AgentBudget
    from workflows.state import RunState
    from workflows.types import TERMINAL_STATUSES, Phase


def invalid_state(state: RunState, wanted: str) -> ApplicationError:
    return ApplicationError(
        f"the project is {state.status.value} (phase {state.phase.value}); {wanted}",
        {"current_status": state.status.value, "phase": state.phase.value},
        type="InvalidState",
        non_retryable=True,
    )


def invalid_input(errors: list[dict[str, str]]) -> ApplicationError:
    """Every problem of one request at once; ``field`` names the first."""
    first = errors[0]
    return ApplicationError(
        f"{first['field']}: {first['message']}",
        {"field": first["field"], "errors": errors},
        type="InvalidInput",
        non_retryable=True,
    )


def check_review(state: RunState, version: int | None) -> None:
    """A decision is taken on the spec version under review, or on the build's review round
    (agent mode's ``review: "diff"``), once: after one is accepted (or while a new version
    or build is made) the gate is closed."""
    if state.open_gate == Phase.AWAITING_REVIEW:
        if version is not None and version != state.review_round:
            raise invalid_state(state, f"review round {state.review_round} is open, not {version}")
        return
    if state.open_gate != Phase.AWAITING_APPROVAL:
        raise invalid_state(state, "no spec or build is awaiting review")
    if version is not None and version != state.spec_version:
        raise invalid_state(state, f"spec v{state.spec_version} is under review, not v{version}")


def check_answers(state: RunState, answers: Mapping[str, Any]) -> None:
    if state.open_gate != Phase.AWAITING_ANSWERS:
        raise invalid_state(state, "no questions are waiting for answers")
    unknown = sorted(set(answers) - {q.id for q in state.questions})
    errors = [{"field": name, "message": "is not a question of this project"} for name in unknown]
    errors += [{"field": q.id, "message": "is required"} for q in state.questions if q.required and q.id not in answers]
    if errors:
        raise invalid_input(errors)


def check_pausable(state: RunState) -> None:
    if state.status in TERMINAL_STATUSES or state.paused:
        raise invalid_state(state, "only a running, unpaused project can be paused")


def check_resumable(state: RunState) -> None:
    if not state.paused or state.status in TERMINAL_STATUSES:
        raise invalid_state(state, "only a paused project can be resumed")


def check_budget(state: RunState, budget: AgentBudget) -> None:
    """A new budget is taken by a run in agent mode that has not ended, and only one that
    what the project has spent does not exhaust already (it would stop again at once)."""
    if state.budget is None:
        raise invalid_state(state, "only a project in agent mode has a model budget")
    if state.status in TERMINAL_STATUSES:
        raise invalid_state(state, "the run has ended; retry it to spend more")
    still = budget_exceeded(budget, state.spent)
    if still is not None:
        raise invalid_input([{"field": ", ".join(still.limits), "message": f"is still exhausted: {still.message}"}])
