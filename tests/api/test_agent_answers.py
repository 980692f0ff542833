"""Answers in agent mode: a model's own questions have ids that are no template variables.
Those answers are held to the type each question was asked with (a boolean takes the forms a
template's yes/no does), template variables to the template as ever, every problem at once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.agent_mode import typed_answers
from store.projects import Projection, apply_projection
from tests.api.agent_support import agent_row

__all__ = ["agent_row"]

NOW = datetime(2026, 1, 1, tzinfo=UTC)
QUESTIONS = [
    {"id": "use_cli", "question": "A CLI?", "type": "boolean", "default": "y"},  # a template variable
    {"id": "audience", "question": "For whom?", "type": "single_choice", "options": ["makers", "shops"]},
    {"id": "offline_first", "question": "Offline first?", "type": "boolean", "default": True},
    {"id": "tone", "question": "What tone?", "type": "text", "default": "plain", "required": True},
]
ASKED = {q["id"]: q for q in QUESTIONS}


@pytest.fixture
def asking(db, agent_row):
    key, project_id = agent_row()
    with db.session(write_lock=True) as session:
        write = Projection(
            project_id=project_id,
            seq=3,
            status="awaiting_answers",
            phase="awaiting_answers",
            at=NOW,
            questions=QUESTIONS,
        )
        apply_projection(session, projection=write)
    return {"X-API-Key": key.key}, project_id


async def test_every_bad_answer_at_once_template_variables_and_the_models_own(http, asking):
    auth, project_id = asking
    answers = {"use_cli": "maybe", "audience": "everyone", "offline_first": "perhaps", "tone": 5, "colour": "red"}
    response = await http.post(f"/projects/{project_id}/answers", json={"answers": answers}, headers=auth)
    assert response.status_code == 400, response.text
    errors = {e["field"]: e["message"] for e in response.json()["error"]["details"]["errors"]}
    assert set(errors) == {"use_cli", "audience", "offline_first", "tone", "colour"}
    assert "makers" in errors["audience"] and "shops" in errors["audience"]
    assert errors["offline_first"] == 'must be true, false, "y" or "n"'
    assert errors["tone"] == "must be a string"
    assert errors["colour"] == "is not a question of this project"


async def test_a_required_question_of_the_model_must_be_answered(http, asking):
    auth, project_id = asking
    response = await http.post(
        f"/projects/{project_id}/answers", json={"answers": {"offline_first": "y"}}, headers=auth
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["details"]["errors"] == [{"field": "tone", "message": "is required"}]


async def test_a_text_answer_is_held_to_the_brief_limit(http, settings, asking):
    auth, project_id = asking
    answers = {"tone": "x" * 5001}
    response = await http.post(f"/projects/{project_id}/answers", json={"answers": answers}, headers=auth)
    assert response.status_code == 400, response.text
    response = await http.post(f"/projects/{project_id}/answers", json={"answers": {"tone": "a\x00b"}}, headers=auth)
    assert response.status_code == 400 and response.json()["error"]["details"]["field"] == "tone"


async def test_good_answers_pass_the_api_and_go_to_the_run(http, asking):
    auth, project_id = asking
    answers = {"use_cli": False, "audience": "shops", "offline_first": "n", "tone": "warm"}
    response = await http.post(f"/projects/{project_id}/answers", json={"answers": answers}, headers=auth)
    # Checked and sent: this row has no workflow, so the run's answer is that it has ended.
    assert response.status_code == 409, response.text
    assert "run has ended" in response.json()["error"]["message"]


def test_typed_answers_normalise_as_the_template_path_does():
    answers = {"audience": "makers", "offline_first": "y", "tone": ""}
    clean, problems = typed_answers(answers, ASKED, max_text=10)
    assert problems == []
    assert clean == {"audience": "makers", "offline_first": True, "tone": ""}
    assert typed_answers({"offline_first": False}, ASKED, max_text=10) == ({"offline_first": False}, [])
    _, problems = typed_answers({"tone": "x" * 11, "offline_first": 1, "audience": ["makers"]}, ASKED, max_text=10)
    assert [field for field, _ in problems] == ["tone", "offline_first", "audience"]
