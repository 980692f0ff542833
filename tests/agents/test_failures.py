"""What a model gets wrong, and what its endpoint does wrong: answers that break the schema go
back to it a bounded number of times, then the phase fails saying what was wrong; 429s
and 5xx are retried by Temporal, with backoff, a bounded number of times."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from agents.fake_llm import Reply
from agents.types import AgentPhase
from store.usage import list_usage
from tests.agents.conftest import phase_input

# A single_choice question without options, three times over.
NO_OPTIONS = {"questions": [{"id": "colour", "question": "Colour?", "type": "single_choice", "recommended": "red"}]}


def failure(exc: pytest.ExceptionInfo[WorkflowFailureError]) -> ApplicationError:
    cause = exc.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def test_a_schema_violation_repeated_past_the_bound_fails_saying_what_was_wrong(
    run_phase, fake, project_id, db, llm_settings
):
    attempts = llm_settings.llm_output_retries + 1
    fake.script(*[Reply(arguments=NO_OPTIONS)] * attempts)
    with pytest.raises(WorkflowFailureError) as exc:
        await run_phase(phase_input(project_id, AgentPhase.CLARIFY))

    error = failure(exc)
    assert error.type == "AgentOutputInvalid" and error.non_retryable
    assert "clarify" in error.message and "a single_choice question needs 2 to 10 distinct options" in error.message
    assert len(fake.received) == attempts  # the first answer and each retry, no more
    # The error went back to the model each time, and every request is on record.
    assert "a single_choice question needs 2 to 10 distinct options" in fake.received[1].text
    with db.session() as session:
        assert len(list_usage(session, project_id=project_id)) == attempts


async def test_malformed_arguments_go_back_to_the_model(run_phase, fake, project_id):
    fake.script(Reply(arguments='{"questions": [{"id": "x", "question": '))
    result = await run_phase(phase_input(project_id, AgentPhase.CLARIFY))

    assert result.status == "completed" and len(result.requests) == 2
    assert "invalid json" in fake.received[1].text.lower() or "json" in fake.received[1].text.lower()


async def test_429_then_200_is_retried_and_succeeds(run_phase, fake, project_id, db):
    fake.script(Reply(status=429), Reply(status=500))
    result = await run_phase(phase_input(project_id, AgentPhase.CLARIFY))

    assert result.status == "completed"
    assert [r.status for r in fake.received] == [429, 500, 200]
    # The bodies are the same request, sent again by Temporal: one completed request on record.
    assert len({r.digest for r in fake.received}) == 1
    assert len(result.requests) == 1
    with db.session() as session:
        assert len(list_usage(session, project_id=project_id)) == 1


async def test_5xx_past_the_attempts_fails_the_phase(run_phase, fake, project_id, llm_settings):
    fake.script(*[Reply(status=500)] * llm_settings.llm_max_attempts)
    with pytest.raises(WorkflowFailureError) as exc:
        await run_phase(phase_input(project_id, AgentPhase.CLARIFY))

    error = failure(exc)
    assert error.type == "AgentModelFailed" and "clarify" in error.message
    assert len(fake.received) == llm_settings.llm_max_attempts


async def test_a_refused_request_is_not_retried(run_phase, fake, project_id):
    fake.script(Reply(status=401))
    with pytest.raises(WorkflowFailureError) as exc:
        await run_phase(phase_input(project_id, AgentPhase.CLARIFY))

    assert failure(exc).type == "AgentModelFailed" and "401" in failure(exc).message
    assert len(fake.received) == 1  # sending it again would be refused again


async def test_a_brief_over_the_bound_is_refused_before_any_request(run_phase, fake, project_id, llm_settings):
    brief = phase_input(project_id, AgentPhase.CLARIFY).brief
    long = brief.model_copy(update={"description": "x" * (llm_settings.llm_max_brief_chars + 1)})
    with pytest.raises(WorkflowFailureError) as exc:
        await run_phase(phase_input(project_id, AgentPhase.CLARIFY, brief=long))

    assert "FORGEFLOW_LLM_MAX_BRIEF_CHARS" in str(exc.value.cause.cause)  # the activity's error
    assert fake.received == []
