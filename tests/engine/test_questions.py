"""questions_for: each question says whether it is required, and its type follows the
manifest, else the variable's default (as validate_answers reads it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from engine.manifest import QuestionDef
from engine.questions import questions_for
from engine.templates import load_template

FIXTURES = Path(__file__).parents[1] / "fixtures" / "templates"


def test_a_manifest_question_is_optional_and_untyped_by_default():
    question = QuestionDef()
    assert question.required is False and question.type is None


def test_questions_carry_required_and_the_inferred_type(tmp_path):
    root = tmp_path / "templates"
    shutil.copytree(FIXTURES / "widget-lib", root / "widget-lib")
    manifest = {"questions": {"use_cli": {"help": "A console script", "required": True}}}
    (root / "widget-lib" / "forgeflow.yaml").write_text(yaml.safe_dump(manifest))
    template = load_template("widget-lib", template_path=str(root))
    asked = {q.id: q for q in questions_for(template, {"project_name": "Gadget"})}
    # An entry that only adds help and `required` keeps the yes/no variable a boolean.
    assert (asked["use_cli"].type, asked["use_cli"].required, asked["use_cli"].default) == ("boolean", True, "y")
    assert (asked["license"].type, asked["license"].required) == ("single_choice", False)
    assert asked["license"].options == ["MIT", "Apache-2.0", "BSD-3-Clause"]
    assert (asked["python_version"].type, asked["python_version"].required) == ("text", False)


def test_the_builtin_templates_questions_are_all_optional():
    template = load_template("djass-saas")
    asked = questions_for(template, {"project_name": "Acme"})
    assert asked and not any(q.required for q in asked)
    assert {q.type for q in asked if q.id.startswith("use_")} == {"boolean"}
