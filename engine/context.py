"""Answers -> the cookiecutter context, exactly as the cookiecutter tool builds it
(``generate_context`` + ``prompt_for_config`` with no input, no user config)."""

from __future__ import annotations

import copy
import json
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

import jinja2
from cookiecutter.generate import apply_overwrites_to_context, generate_context
from cookiecutter.prompt import prompt_choice_for_config, render_variable
from jinja2 import Environment, TemplateError

from engine import EngineError, InvalidAnswer, InvalidAnswers, copier_answers
from engine.jinja import environment
from engine.lru import LRU
from engine.templates import Template

YES_NO = ("y", "n")


def question_type(template: Template, name: str) -> str:
    """boolean, single_choice or text: the manifest's word for the variable, else inferred
    from its default (a list is a choice; a bool, "y" or "n" a yes/no question)."""
    question = template.manifest.questions.get(name)
    if question is not None and question.type is not None:
        return question.type
    default = template.variables[name]
    if isinstance(default, list):
        return "single_choice"
    if isinstance(default, bool) or default in YES_NO:
        return "boolean"
    return "text"


def validate_answers(template: Template, answers: Mapping[str, Any], *, complete: bool = False) -> dict[str, Any]:
    """Check answers against the template's variables and manifest; return them normalised
    (a yes/no as the template compares it). Every problem is reported at once, as
    :class:`InvalidAnswers`. ``complete``: no question will be asked after these answers, so
    a required question they leave out is a problem too; any other takes its default."""
    if template.format == "copier":
        return _validate_copier(template, answers, complete=complete)
    clean: dict[str, Any] = {}
    errors: list[InvalidAnswer] = []
    for name, value in answers.items():
        if name not in template.variables or name.startswith("_"):
            errors.append(InvalidAnswer(name, "is not a variable of this template"))
            continue
        try:
            clean[name] = _check_value(template, name, value)
        except InvalidAnswer as exc:
            errors.append(exc)
    if complete:
        errors += [InvalidAnswer(name, "is required") for name in _unanswered_required(template, answers, clean)]
    if errors:
        raise InvalidAnswers(errors)
    return clean


def _validate_copier(template: Template, answers: Mapping[str, Any], *, complete: bool) -> dict[str, Any]:
    """Copier's own casts, choices and validators (engine.copier_answers)."""
    errors = [InvalidAnswer(n, "is not a variable of this template") for n in answers if n not in template.variables]
    walked = copier_answers.walk(template, {n: v for n, v in answers.items() if n in template.variables})
    errors += walked.errors
    if complete:
        errors += [InvalidAnswer(name, "is required") for name in walked.missing]
    if errors:
        raise InvalidAnswers(errors)
    return walked.clean


def accepts_answer(template: Template, name: str, value: Any) -> bool:
    """Whether ``value`` is an answer the template takes for ``name``."""
    try:
        validate_answers(template, {name: value})
    except InvalidAnswer:
        return False
    return True


def _unanswered_required(template: Template, answers: Mapping[str, Any], clean: dict[str, Any]) -> list[str]:
    """Required questions ``answers`` leave out, unless their ``when`` is false for them."""
    questions = template.manifest.questions
    missing = [n for n, q in questions.items() if q.required and n in template.variables and n not in answers]
    if not any(questions[n].when for n in missing):
        return missing  # no condition to evaluate: no context to build
    try:
        context = build_context(template, clean)
    except EngineError:
        return missing  # the answers' own errors say why; each still counts as missing
    return [n for n in missing if evaluate(questions[n].when, context, trusted=template.trusted)]


def _check_value(template: Template, name: str, value: Any) -> Any:
    default = template.variables[name]
    question = template.manifest.questions.get(name)
    if isinstance(default, list):
        if value not in default:
            raise InvalidAnswer(name, f"must be one of {', '.join(map(str, default))}")
        return value
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise InvalidAnswer(name, "must be an object")
        return value
    if isinstance(default, bool) or question_type(template, name) == "boolean":
        return _yes_no(name, value, as_bool=isinstance(default, bool))
    if not isinstance(value, str):
        raise InvalidAnswer(name, "must be a string")
    if question is not None:
        if question.type == "single_choice" and question.options and value not in question.options:
            raise InvalidAnswer(name, f"must be one of {', '.join(question.options)}")
        if question.pattern and value and not re.search(question.pattern, value):
            raise InvalidAnswer(name, "has an invalid format")
    return value


def _yes_no(name: str, value: Any, *, as_bool: bool) -> bool | str:
    """JSON true/false or "y"/"n", as the template's default is written: a cookiecutter
    boolean variable gets a bool, a yes/no string variable (``{% if x == 'y' %}``) "y"/"n"."""
    if isinstance(value, bool):
        flag = value
    elif isinstance(value, str) and value in YES_NO:
        flag = value == "y"
    else:
        raise InvalidAnswer(name, 'must be true, false, "y" or "n"')
    if as_bool:
        return flag
    return "y" if flag else "n"


def build_context(template: Template, answers: Mapping[str, Any], *, output_dir: str = ".") -> dict[str, Any]:
    """The full context cookiecutter would render with, for these answers, with one intended
    difference: a client's answers are data. The cookiecutter tool renders every supplied
    value as a Jinja template (``prompt_for_config``), which would run a client's text as
    code on the worker; here only the template author's own defaults are rendered, and an
    answer reaches the files exactly as it was sent. A value without Jinja syntax renders to
    itself in the tool too, so outputs are byte for byte the tool's for every such answer.

    A Copier template's context holds every value Copier renders with under ``cookiecutter``
    too (what a forgeflow.yaml's conditions see), and the answers Copier is given."""
    if template.format == "copier":
        return _copier_context(template, answers)
    supplied_dicts = {k: v for k, v in answers.items() if isinstance(template.variables.get(k), dict)}
    plain = {k: v for k, v in answers.items() if k not in supplied_dicts}
    try:
        context = generate_context(
            context_file=str(template.path / "cookiecutter.json"),
            default_context=None,
            extra_context=plain,
        )
        raw = context["cookiecutter"]
        # What the tool keeps as `_cookiecutter`: the raw values, client dicts merged in.
        context["_cookiecutter"] = {
            k: _overlaid(copy.deepcopy(v), supplied_dicts[k]) if k in supplied_dicts else v
            for k, v in raw.items()
            if not k.startswith("_")
        }
        env = environment(context, trusted=template.trusted, template_path=template.path)
        context["cookiecutter"].update(_resolve(raw, env, plain.keys(), supplied_dicts))
    except (ValueError, TemplateError) as exc:
        raise EngineError(f"cannot build the template context: {exc}") from exc
    context["cookiecutter"]["_template"] = str(template.path)
    context["cookiecutter"]["_output_dir"] = output_dir
    context["cookiecutter"]["_repo_dir"] = str(template.path)
    context["cookiecutter"]["_checkout"] = None
    return context


COPIER_DATA = "_copier_data"


def _copier_context(template: Template, answers: Mapping[str, Any]) -> dict[str, Any]:
    walked = copier_answers.walk(template, answers)
    if walked.errors:
        raise InvalidAnswers(walked.errors)
    if walked.missing:
        raise EngineError(f"no answer for {', '.join(walked.missing)}, which have no default")
    return {"cookiecutter": dict(walked.values), COPIER_DATA: dict(answers)}


def _overlaid(value: dict[str, Any], overwrite: Mapping[str, Any]) -> dict[str, Any]:
    # The tool's own merge of a supplied dict into the default (keys added, lists replaced).
    apply_overwrites_to_context(value, dict(overwrite), in_dictionary_variable=True)
    return value


def _resolve(
    raw: dict[str, Any], env: Environment, supplied: Iterable[str], supplied_dicts: Mapping[str, Any]
) -> OrderedDict[str, Any]:
    """``prompt_for_config(no_input=True)``, step for step, except that a supplied value is
    taken as it is instead of being rendered. A supplied choice is one of the author's own
    options (checked before), so it renders as the tool renders it."""
    given = set(supplied)
    values: OrderedDict[str, Any] = OrderedDict()
    raw.pop("__prompts__", None)
    # First pass: simple variables and choices, which dict variables may refer to.
    for key, value in raw.items():
        if key.startswith("_") and not key.startswith("__"):
            values[key] = value
        elif key.startswith("__"):
            values[key] = render_variable(env, value, values)
        elif isinstance(value, list):
            values[key] = prompt_choice_for_config(values, env, key, value, no_input=True)
        elif isinstance(value, dict):
            continue
        elif key in given:
            values[key] = value
        else:
            values[key] = render_variable(env, value, values)
    # Second pass: dict variables, the author's rendered and the client's merged in as data.
    for key, value in raw.items():
        if (key.startswith("_") and not key.startswith("__")) or not isinstance(value, dict):
            continue
        rendered = render_variable(env, value, values)
        values[key] = _overlaid(rendered, supplied_dicts[key]) if key in supplied_dicts else rendered
    return values


def evaluate(expression: str | None, context: Mapping[str, Any], *, trusted: bool = False) -> bool:
    """A manifest ``when``: a Jinja expression (bare or in ``{{ }}``) over ``cookiecutter``,
    in the template's environment (sandboxed unless the template is trusted)."""
    if expression is None or not expression.strip():
        return True
    source = expression.strip()
    if not source.startswith("{{"):
        source = "{{ " + source + " }}"
    try:
        rendered = _condition(source, context, trusted).render(**context).strip().lower()
    except TemplateError as exc:
        raise EngineError(f"cannot evaluate condition {expression!r}: {exc}") from exc
    return rendered not in ("", "false", "0", "n", "no", "none")


# Compiled conditions, per template, trust and environment: every project of a template
# evaluates the same few expressions, and building cookiecutter's environment (its
# extensions) and compiling an expression cost far more than rendering it.
_conditions: LRU[tuple[str, bool, str], jinja2.Template] = LRU(1024)


def _condition(source: str, context: Mapping[str, Any], trusted: bool) -> jinja2.Template:
    settings = context.get("cookiecutter", {})
    key = json.dumps(
        [settings.get("_template"), settings.get("_extensions", []), settings.get("_jinja2_env_vars", {})],
        sort_keys=True,
        default=str,
    )
    return _conditions.get_or_make(
        (source, trusted, key), lambda: environment(context, trusted=trusted).from_string(source)
    )
