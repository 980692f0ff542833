"""Clarify and spec from the built-in template's manifest."""

from __future__ import annotations

import pytest

from engine import InvalidAnswer
from engine.context import build_context, validate_answers
from engine.plan import decompose
from engine.questions import questions_for
from engine.spec import SPEC_DOCUMENTS, render_spec
from engine.templates import load_template


@pytest.fixture(scope="module")
def template():
    return load_template("djass-saas")


def test_every_unanswered_variable_is_a_typed_question(template):
    questions = {q.id: q for q in questions_for(template, {"project_name": "Acme"})}
    assert "project_name" not in questions
    color = questions["project_main_color"]
    assert color.type == "single_choice" and "green" in color.options and color.default == "blue"
    assert questions["use_stripe"].type == "boolean" and questions["use_stripe"].default == "n"
    assert questions["project_slug"].default == "acme"  # rendered from the answers so far
    assert questions["use_stripe"].help


def test_no_question_when_everything_is_answered(template):
    answers = {name: template.variables[name] for name in template.public_variables}
    answers["project_slug"] = "acme"
    assert questions_for(template, answers) == []


def test_answers_are_validated_against_the_manifest(template):
    with pytest.raises(InvalidAnswer) as raised:
        validate_answers(template, {"use_ai": "yes"})
    assert raised.value.field == "use_ai"
    with pytest.raises(InvalidAnswer):
        validate_answers(template, {"project_main_color": "pink"})
    with pytest.raises(InvalidAnswer):
        validate_answers(template, {"not_a_variable": "x"})


def test_spec_documents_follow_the_flags_and_record_feedback(template):
    answers = {"project_name": "Acme CRM", "use_stripe": "y", "generate_blog": "n"}
    context = build_context(template, answers)
    plan = decompose(template, context)
    docs = render_spec(template, context, plan, version=2, feedback=["Use Postgres"])
    assert tuple(docs) == SPEC_DOCUMENTS
    assert "_Spec version 2._" in docs["SPEC.md"] and "- Use Postgres" in docs["SPEC.md"]
    slugs = [t.slug for t in plan.tasks]
    assert "billing" in slugs and "blog" not in slugs
    assert "billing" in docs["ROUTES.md"] and "| blog |" not in docs["ROUTES.md"]
