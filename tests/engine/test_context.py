"""validate_answers: yes/no questions take JSON booleans as well as "y"/"n" (normalised to
what the template compares), unanswered questions take their defaults unless required, and
every problem of one set of answers is reported at once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from engine import InvalidAnswer, InvalidAnswers
from engine.context import accepts_answer, build_context, question_type, validate_answers
from engine.render import render_files
from engine.templates import load_template

FIXTURES = Path(__file__).parents[1] / "fixtures" / "templates"


@pytest.fixture(scope="module")
def djass():
    return load_template("djass-saas")


def widget(tmp_path: Path, questions: dict, variables: dict | None = None):
    """widget-lib with a manifest of these questions (and these variables added)."""
    root = tmp_path / "templates"
    shutil.copytree(FIXTURES / "widget-lib", root / "widget-lib")
    if variables:
        path = root / "widget-lib" / "cookiecutter.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **variables}))
    (root / "widget-lib" / "forgeflow.yaml").write_text(yaml.safe_dump({"questions": questions}))
    return load_template("widget-lib", template_path=str(root))


@pytest.mark.parametrize(("sent", "stored"), [(True, "y"), (False, "n"), ("y", "y"), ("n", "n")])
def test_a_yes_no_question_takes_json_booleans_as_the_template_compares_them(djass, sent, stored):
    assert validate_answers(djass, {"use_stripe": sent}) == {"use_stripe": stored}


def test_the_normalised_answer_is_what_renders(djass):
    answers = validate_answers(djass, {"project_name": "Acme", "use_stripe": True, "use_ci": False})
    files = render_files(djass.path, build_context(djass, answers), digest=djass.digest)
    assert "billing/views.py" in files and ".github/workflows/ci.yml" not in files


@pytest.mark.parametrize("sent", ["yes", "true", "Y", 1, 0, None, ["y"]])
def test_a_yes_no_question_refuses_anything_else(djass, sent):
    with pytest.raises(InvalidAnswer) as raised:
        validate_answers(djass, {"use_ai": sent})
    assert (raised.value.field, raised.value.message) == ("use_ai", 'must be true, false, "y" or "n"')


def test_a_yes_no_variable_without_a_manifest_entry_is_a_boolean_too():
    template = load_template("widget-lib", template_path=str(FIXTURES))  # use_cli: "y", no manifest
    assert question_type(template, "use_cli") == "boolean"
    assert validate_answers(template, {"use_cli": False}) == {"use_cli": "n"}


def test_a_cookiecutter_boolean_variable_gets_a_bool(tmp_path):
    template = widget(tmp_path, {}, {"with_docs": True})
    assert question_type(template, "with_docs") == "boolean"
    assert validate_answers(template, {"with_docs": "n"}) == {"with_docs": False}
    assert validate_answers(template, {"with_docs": True}) == {"with_docs": True}


def test_an_entry_without_a_type_keeps_the_inferred_one(tmp_path):
    template = widget(tmp_path, {"use_cli": {"help": "A console script"}, "license": {"required": True}})
    assert question_type(template, "use_cli") == "boolean"
    assert question_type(template, "license") == "single_choice"
    assert question_type(template, "python_version") == "text"


def test_every_problem_is_reported_at_once_the_first_as_field(djass):
    with pytest.raises(InvalidAnswers) as raised:
        validate_answers(
            djass, {"use_ai": "maybe", "project_main_color": "pink", "nope": 1, "project_slug": "Bad Slug"}
        )
    errors = [(e.field, e.message) for e in raised.value.errors]
    assert errors == [
        ("use_ai", 'must be true, false, "y" or "n"'),
        ("project_main_color", "must be one of blue, green, red, purple, orange, teal, slate"),
        ("nope", "is not a variable of this template"),
        ("project_slug", "has an invalid format"),
    ]
    # A handler of a single InvalidAnswer still sees the first.
    assert isinstance(raised.value, InvalidAnswer) and raised.value.field == "use_ai"
    assert str(raised.value).count(";") == 3


def test_one_problem_is_a_list_of_one(djass):
    with pytest.raises(InvalidAnswer) as raised:
        validate_answers(djass, {"use_ai": "yes"})
    assert [e.field for e in raised.value.errors] == ["use_ai"]


def test_unanswered_questions_take_their_defaults_unless_required(tmp_path):
    template = widget(tmp_path, {"license": {"required": True}})
    assert validate_answers(template, {}) == {}  # questions may still be asked
    with pytest.raises(InvalidAnswers) as raised:
        validate_answers(template, {"use_cli": "maybe"}, complete=True)
    assert [(e.field, e.message) for e in raised.value.errors] == [
        ("use_cli", 'must be true, false, "y" or "n"'),
        ("license", "is required"),
    ]
    assert validate_answers(template, {"license": "MIT"}, complete=True) == {"license": "MIT"}
    # Not required: left out, the default applies.
    context = build_context(template, validate_answers(template, {"license": "MIT"}, complete=True))
    assert context["cookiecutter"]["python_version"] == "3.11"


def test_a_required_question_whose_condition_is_false_is_not_required(tmp_path):
    template = widget(tmp_path, {"python_version": {"required": True, "when": "cookiecutter.use_cli == 'y'"}})
    assert validate_answers(template, {"use_cli": "n"}, complete=True) == {"use_cli": "n"}
    with pytest.raises(InvalidAnswer) as raised:
        validate_answers(template, {"use_cli": True}, complete=True)
    assert (raised.value.field, raised.value.message) == ("python_version", "is required")


@pytest.mark.parametrize(
    ("email", "listed"),
    [
        ("dev@example.com", True),
        ("", False),
        ("dev@localhost", False),
        ("a b@c.de", False),
        ("[email protected]", False),  # the Djass contract's own example
        ("a@b@c.de", False),
    ],
)
def test_the_builtin_template_lists_only_an_author_email_packaging_accepts(djass, email, listed):
    # Any text is an answer (the contract's example is not an address); the template puts
    # it into the package metadata only where `pip install .` accepts it.
    assert accepts_answer(djass, "author_email", email)
    context = build_context(djass, validate_answers(djass, {"project_name": "Mail", "author_email": email}))
    pyproject = render_files(djass.path, context, trusted=True)["pyproject.toml"].data.decode()
    assert (f"email = {json.dumps(email)}" in pyproject) is listed
