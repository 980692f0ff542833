"""Usage and budgets: every completed request on record (equal to what the endpoint
reported), and a project that never spends more than one request beyond its budget."""

from __future__ import annotations

import json

from agents.fake_llm import Reply
from agents.schemas import AgentQuestion, ClarifyOutput
from agents.types import AgentBudget, AgentPhase, RecordRequestInput, Reproducibility, StoreOutputInput
from forgeflow.worker import build_activities
from store.artifact_stores import open_artifact_store
from store.usage import list_usage, usage_summary
from tests.agents.conftest import phase_input

CYCLIC = {
    "tasks": [
        {"id": "a", "title": "A", "instructions": "x", "dependencies": ["b"], "path_scope": ["a/**"]},
        {"id": "b", "title": "B", "instructions": "x", "dependencies": ["a"], "path_scope": ["b/**"]},
    ]
}


async def test_usage_on_record_equals_what_the_endpoint_reported(run_phase, fake, project_id, db):
    await run_phase(phase_input(project_id, AgentPhase.CLARIFY))
    spec = await run_phase(phase_input(project_id, AgentPhase.SPEC))
    fake.script(Reply(arguments=CYCLIC))
    plan = await run_phase(phase_input(project_id, AgentPhase.PLAN, spec_key=spec.output.spec.documents_key))

    prompt, completion = fake.reported_tokens()
    with db.session() as session:
        summary = usage_summary(session, project_id=project_id)
    assert summary.totals.requests == len(fake.answered) == 4
    assert (summary.totals.input_tokens, summary.totals.output_tokens) == (prompt, completion)
    assert summary.totals.total_tokens == prompt + completion
    assert {phase: t.requests for phase, t in summary.by_phase.items()} == {"clarify": 1, "spec": 1, "plan": 2}
    assert summary.by_run[1].requests == 4 and summary.by_task == {}
    assert summary.totals.unpriced_requests == 4  # forgeflow-fake is in no price table
    assert plan.spent.total_tokens == prompt + completion


async def test_a_token_budget_that_runs_out_stops_the_phase_after_at_most_one_request_beyond(
    run_phase, fake, project_id, db
):
    spec = await run_phase(phase_input(project_id, AgentPhase.SPEC))
    spent = spec.spent.total_tokens
    budget = AgentBudget(max_total_tokens=spent + 1)  # room for one more request, not two
    fake.script(Reply(arguments=CYCLIC))
    stopped = await run_phase(
        phase_input(project_id, AgentPhase.PLAN, spec_key=spec.output.spec.documents_key, budget=budget)
    )

    assert stopped.status == "budget_exceeded" and stopped.output is None
    assert stopped.budget_exceeded.limits == ["max_total_tokens"]
    assert f"of a budget of {spent + 1}" in stopped.budget_exceeded.message
    assert len(stopped.requests) == 1 and len(fake.received) == 2  # the spec's, and the one beyond
    assert stopped.spent.total_tokens > budget.max_total_tokens
    with db.session() as session:  # what was spent stays on record
        assert len(list_usage(session, project_id=project_id)) == 2
    # The project's budget is spent: the next phase sends nothing at all.
    again = await run_phase(phase_input(project_id, AgentPhase.CLARIFY, budget=budget))
    assert again.status == "budget_exceeded" and again.requests == [] and len(fake.received) == 2


async def test_an_unpriced_model_counts_as_exceeding_a_cost_budget(run_phase, fake, project_id):
    budget = AgentBudget(max_cost_usd=100.0)
    first = await run_phase(phase_input(project_id, AgentPhase.CLARIFY, budget=budget))
    assert first.status == "completed" and first.requests[0].cost_usd is None

    stopped = await run_phase(phase_input(project_id, AgentPhase.SPEC, budget=budget))
    assert stopped.status == "budget_exceeded" and stopped.budget_exceeded.limits == ["max_cost_usd"]
    message = stopped.budget_exceeded.message
    assert "could not be priced" in message and "forgeflow-fake" in message and "FORGEFLOW_LLM_PRICES" in message
    assert stopped.requests == [] and len(fake.received) == 1
    # Without a cost budget, an unpriced request is recorded and nothing stops.
    assert (await run_phase(phase_input(project_id, AgentPhase.SPEC))).status == "completed"


def test_the_store_step_records_the_request_that_gave_the_output_once_however_often_it_runs(
    llm_settings, db, project_id
):
    # The phase records its last request in the step that stores the output; a step run
    # again (a retried local activity) stores nothing twice and answers the same.
    store = next(a for a in build_activities(llm_settings, db) if a.__name__ == "store_agent_output")
    last = RecordRequestInput(
        key=f"test/{project_id}/1",
        project_id=project_id,
        run_number=1,
        phase=AgentPhase.CLARIFY,
        task_id=None,
        number=1,
        model="forgeflow-fake",
        provider=None,
        provider_url=None,
        input_tokens=300,
        output_tokens=40,
    )
    question = AgentQuestion(id="audience", question="Who is it for?", type="text", recommended="developers")
    step = StoreOutputInput(
        request=phase_input(project_id, AgentPhase.CLARIFY),
        reproducibility=Reproducibility(
            model="test-model", base_url_host="127.0.0.1", instructions_sha256="i", prompt_sha256="p"
        ),
        last_request=last,
        questions=ClarifyOutput(questions=[question]),
    )
    first, again = store(step), store(step)

    assert first == again and first.last_request is not None
    assert first.last_request.usage.total_tokens == 340 and first.last_request.spent.total_tokens == 340
    with db.session() as session:
        assert [(u.request_key, u.total_tokens) for u in list_usage(session, project_id=project_id)] == [
            (f"test/{project_id}/1", 340)
        ]
    # The output's record lists the request it came from.
    key = first.output.key.rsplit("/", 1)[0] + "/reproducibility.json"
    record = json.loads(open_artifact_store(llm_settings).open(key).read())
    assert [r["total_tokens"] for r in record["requests"]] == [340] and record["models_answering"] == ["forgeflow-fake"]
