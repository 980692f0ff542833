"""Answers -> the cookiecutter context, exactly as the cookiecutter tool builds it
(``generate_context`` + ``prompt_for_config`` with no input, no user config)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import jinja2
from cookiecutter.generate import generate_context
from cookiecutter.prompt import prompt_for_config
from jinja2 import TemplateError

from engine import EngineError, InvalidAnswer
from engine.lru import LRU
from engine.templates import Template

YES_NO = ("y", "n")


def validate_answers(template: Template, answers: Mapping[str, Any]) -> dict[str, Any]:
    """Check answers against the template's variables and manifest; return them normalised."""
    clean: dict[str, Any] = {}
    for name, value in answers.items():
        if name not in template.variables or name.startswith("_"):
            raise InvalidAnswer(name, "is not a variable of this template")
        clean[name] = _check_value(template, name, value)
    return clean


def _check_value(template: Template, name: str, value: Any) -> Any:
    default = template.variables[name]
    question = template.manifest.questions.get(name)
    if isinstance(default, list):
        if value not in default:
            raise InvalidAnswer(name, f"must be one of {', '.join(map(str, default))}")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise InvalidAnswer(name, "must be true or false")
        return value
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise InvalidAnswer(name, "must be an object")
        return value
    if not isinstance(value, str):
        raise InvalidAnswer(name, "must be a string")
    if question is not None:
        if question.type == "boolean" and value not in YES_NO:
            raise InvalidAnswer(name, 'must be "y" or "n"')
        if question.type == "single_choice" and question.options and value not in question.options:
            raise InvalidAnswer(name, f"must be one of {', '.join(question.options)}")
        if question.pattern and value and not re.search(question.pattern, value):
            raise InvalidAnswer(name, "has an invalid format")
    return value


def build_context(template: Template, answers: Mapping[str, Any], *, output_dir: str = ".") -> dict[str, Any]:
    """The full context cookiecutter would render with, for these answers."""
    try:
        context = generate_context(
            context_file=str(template.path / "cookiecutter.json"),
            default_context=None,
            extra_context=dict(answers),
        )
        context["_cookiecutter"] = {k: v for k, v in context["cookiecutter"].items() if not k.startswith("_")}
        context["cookiecutter"].update(prompt_for_config(context, no_input=True))
    except (ValueError, TemplateError) as exc:
        raise EngineError(f"cannot build the template context: {exc}") from exc
    context["cookiecutter"]["_template"] = str(template.path)
    context["cookiecutter"]["_output_dir"] = output_dir
    context["cookiecutter"]["_repo_dir"] = str(template.path)
    context["cookiecutter"]["_checkout"] = None
    return context


def evaluate(expression: str | None, context: Mapping[str, Any]) -> bool:
    """A manifest ``when``: a Jinja expression (bare or in ``{{ }}``) over ``cookiecutter``."""
    if expression is None or not expression.strip():
        return True
    source = expression.strip()
    if not source.startswith("{{"):
        source = "{{ " + source + " }}"
    try:
        rendered = _condition(source, context).render(**context).strip().lower()
    except TemplateError as exc:
        raise EngineError(f"cannot evaluate condition {expression!r}: {exc}") from exc
    return rendered not in ("", "false", "0", "n", "no", "none")


# Compiled conditions, per template and environment: every project of a template evaluates
# the same few expressions, and building cookiecutter's environment (its extensions) and
# compiling an expression cost far more than rendering it.
_conditions: LRU[tuple[str, str], jinja2.Template] = LRU(1024)


def _condition(source: str, context: Mapping[str, Any]) -> jinja2.Template:
    from cookiecutter.utils import create_env_with_context

    settings = context.get("cookiecutter", {})
    environment = json.dumps(
        [settings.get("_template"), settings.get("_extensions", []), settings.get("_jinja2_env_vars", {})],
        sort_keys=True,
        default=str,
    )
    return _conditions.get_or_make(
        (source, environment), lambda: create_env_with_context(dict(context)).from_string(source)
    )
