"""Clarify: a typed question for every public variable the request left unanswered."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.context import build_context, evaluate, question_type
from engine.copier_answers import walk
from engine.templates import Template


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    type: str  # boolean | single_choice | text
    options: list[str] | None
    default: Any
    help: str
    required: bool = False  # else, left unanswered, it takes its default


def questions_for(template: Template, answers: Mapping[str, Any]) -> list[Question]:
    if template.format == "copier":
        return _copier_questions(template, answers)
    context = build_context(template, answers)
    rendered = context["cookiecutter"]
    found: list[Question] = []
    for name in template.public_variables:
        if name in answers:
            continue
        spec = template.manifest.questions.get(name)
        if spec is not None and not evaluate(spec.when, context, trusted=template.trusted):
            continue
        raw_default = template.variables[name]
        kind = question_type(template, name)
        options = [str(o) for o in raw_default] if isinstance(raw_default, list) else None
        if spec is not None and spec.options is not None:
            options = spec.options
        found.append(
            Question(
                id=name,
                question=(spec.prompt if spec and spec.prompt else name.replace("_", " ").capitalize()),
                type=kind,
                options=options,
                default=rendered.get(name),
                help=spec.help if spec else "",
                required=spec.required if spec else False,
            )
        )
    return found


def _copier_questions(template: Template, answers: Mapping[str, Any]) -> list[Question]:
    """What ``copier copy`` would still ask after ``answers``: its `when` true, not `ask: false`."""
    return [
        Question(
            id=q.name,
            question=q.help.strip().splitlines()[0] if q.help.strip() else q.name.replace("_", " ").capitalize(),
            type=q.type,
            options=q.options,
            default=q.default,
            help=q.help.strip(),
            required=q.required,
        )
        for q in walk(template, answers).questions
        if q.name not in answers and q.when and q.ask
    ]
