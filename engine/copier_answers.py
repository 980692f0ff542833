"""A Copier template's questions and answers, as ``copier copy --defaults --data ...``
goes through them (Copier's ``Worker._ask``, without a prompt): in order, each question's
``when``, choices, default (the author's Jinja, rendered with the answers before it) and
validator evaluated by Copier's own ``Question``. A client's answers are data: Copier casts
them to the question's type and checks them against its choices and validator, and never
renders them as Jinja.

forgeflow's question types: a question with choices is a ``single_choice`` (its options
the choices' values, as text), a ``bool`` one a ``boolean``; every other type (str, int,
float, path, json, yaml, and multiselect choices) is ``text``, whose answer may be any
JSON value Copier can cast (``3`` or ``"3"`` for an int; a list for a multiselect)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import TemplateError

from engine import EngineError, InvalidAnswer, copier_bridge
from engine.templates import Template

YES_NO = ("y", "n")


@dataclass(frozen=True)
class CopierQuestion:
    name: str
    type: str  # forgeflow's: boolean | single_choice | text
    copier_type: str
    when: bool
    ask: bool
    default: Any  # JSON-shaped; None where there is none
    required: bool  # no default: it must be answered
    options: list[str] | None
    help: str
    raw_when: str | None  # the author's condition, for listings


@dataclass
class Walk:
    values: dict[str, Any] = field(default_factory=dict)  # what Copier renders with
    questions: list[CopierQuestion] = field(default_factory=list)
    errors: list[InvalidAnswer] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # no answer and no default
    clean: dict[str, Any] = field(default_factory=dict)  # the answers as forgeflow keeps them


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _message(exc: Exception, name: str) -> str:
    text = str(exc).strip() or type(exc).__name__
    for prefix in (f"Validation error for question '{name}': ", f"Invalid choice for '{name}': "):
        text = text.removeprefix(prefix)
    return text


def _cast(question: Any, type_name: str, value: Any) -> Any:
    """A client's value as Copier takes it; a boolean as forgeflow's other templates take one."""
    if type_name == "bool" and not question.choices:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value in YES_NO:
            return value == "y"
        raise ValueError('must be true, false, "y" or "n"')
    try:
        question.cast_answer(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"must be a {type_name} value") from exc
    return value


def walk(template: Template, answers: Mapping[str, Any]) -> Walk:
    """Every question as it stands after ``answers``: asked or not, its default, and the
    problems with ``answers`` (all of them, not only the first)."""
    found = Walk()
    given = dict(answers)
    # Where the project would go: nothing is written, and nothing is there to read.
    dst = template.path / ".forgeflow-project" / root_name(template, answers)
    try:
        with copier_bridge.worker(template.path, dst, {}, trusted=template.trusted) as worker:
            state = copier_bridge.AnswersMap(metadata=worker.template.metadata, external=worker._external_data())
            worker.answers = state
            for name, details in worker.template.questions_data.items():
                _one(worker, state, name, details, given, found)
    except (copier_bridge.CopierError, TemplateError, TypeError, KeyError, ValueError) as exc:
        raise EngineError(f"template error: {exc}") from exc
    return found


def _one(worker: Any, state: Any, name: str, details: dict[str, Any], given: dict[str, Any], found: Walk) -> None:
    question = copier_bridge.Question(
        answers=state,
        context=worker._render_context(),
        jinja_env=worker.jinja_env,
        settings=worker.settings,
        var_name=name,
        **details,
    )
    try:
        type_name = question.get_type_name()
        when, ask = question.get_when(), question.get_ask()
        choices = [c.value for c in question._formatted_choices] if question.choices else None
        helptext = str(question.render_value(question.help) or "")
    except (ValueError, copier_bridge.CopierError, TemplateError) as exc:
        raise EngineError(f"template error in question {name!r}: {exc}") from exc
    # A given answer stands in for the default, which Copier then never renders.
    default: Any = copier_bridge.MISSING
    if name not in given:
        try:
            default = question.get_default()
        except (ValueError, copier_bridge.CopierError, TemplateError):
            # A default its own validator refuses, or one that needs an answer not given
            # yet: nothing to fall back on, so it must be answered, as copier copy insists.
            default = copier_bridge.MISSING
    if type_name == "bool" and not choices:
        kind = "boolean"
    elif choices is not None and not question.multiselect:
        kind = "single_choice"
    else:
        kind = "text"
    raw_when = details.get("when")
    found.questions.append(
        CopierQuestion(
            name=name,
            type=kind,
            copier_type=type_name,
            when=when,
            ask=ask,
            default=None if default is copier_bridge.MISSING else _jsonable(default),
            required=default is copier_bridge.MISSING,
            options=[str(c) for c in choices] if kind == "single_choice" and choices is not None else None,
            help=helptext,
            raw_when=None if raw_when is None or raw_when is True else str(raw_when),
        )
    )
    if not when:
        state.hide(name)
        if default is copier_bridge.MISSING and name not in given:
            return
    if name in given:
        # Copier takes a given answer even where `when` is false (copier copy --data).
        try:
            value = _cast(question, type_name, given[name])
            parsed = question.parse_answer(value)
            question.validate_answer(parsed)
        except (ValueError, TypeError, copier_bridge.CopierError) as exc:
            found.errors.append(InvalidAnswer(name, _message(exc, name)))
            return
        state.user[name] = parsed
        found.values[name] = parsed
        found.clean[name] = value  # as sent, but a yes/no as a bool
        return
    if default is copier_bridge.MISSING:
        found.missing.append(name)
        return
    state.user[name] = default
    found.values[name] = default


def root_name(template: Template, answers: Mapping[str, Any]) -> str:
    """The project's directory (Copier's ``_folder_name``): its ``project_slug`` answer, else
    the template's id."""
    slug = answers.get("project_slug")
    return slug if isinstance(slug, str) and slug else template.id
