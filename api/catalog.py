"""What ``GET /templates`` tells: each template the API can use, its variables with the
type, rendered default and choices a client would be asked for, and whether it is trusted.

The engine's own question logic (``engine.questions.questions_for``) describes each
variable, so a listed type or default is exactly what a project's questions would show."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from engine import EngineError
from engine.lru import LRU
from engine.questions import questions_for
from engine.templates import BUILTIN_TEMPLATES_DIR, DEFAULT_TEMPLATE_ID, Template, discover_templates, search_dirs
from engine.templates import load_template as engine_load_template
from forgeflow.settings import Settings


@dataclass(frozen=True)
class VariableInfo:
    name: str
    type: str  # boolean | single_choice | text
    prompt: str
    help: str
    default: Any
    choices: list[str] | None
    pattern: str | None
    when: str | None


@dataclass(frozen=True)
class TemplateInfo:
    id: str
    title: str
    description: str
    version: str
    builtin: bool
    trusted: bool
    default: bool
    usable: bool
    problem: str | None
    variables: list[VariableInfo]


class TemplateNotFound(Exception):
    def __init__(self, template_id: str, available: list[str]) -> None:
        super().__init__(template_id)
        self.template_id, self.available = template_id, available


# A description is a pure function of the template's content and trust: keep it, so a
# listing does not build every template's cookiecutter context on every request.
_described: LRU[tuple[str, str, bool], list[VariableInfo]] = LRU(64)


def list_templates(settings: Settings) -> list[TemplateInfo]:
    found = discover_templates(search_dirs(settings.template_path))
    return [describe_template(settings, template_id) for template_id in sorted(found)]


def describe_template(settings: Settings, template_id: str) -> TemplateInfo:
    found = discover_templates(search_dirs(settings.template_path))
    path = found.get(template_id)
    if path is None:
        raise TemplateNotFound(template_id, sorted(found))
    builtin = path.parent == BUILTIN_TEMPLATES_DIR
    trusted = builtin or template_id in settings.trusted_template_ids
    try:
        template = engine_load_template(
            template_id, template_path=settings.template_path, trusted_ids=settings.trusted_template_ids
        )
        key = (str(template.path), template.digest, template.trusted)
        variables = _described.get_or_make(key, lambda: _variables(template))
    except EngineError as exc:
        # Listed all the same, with the reason a create would be refused (template_unusable):
        # an operator sees why a template they added does not work.
        return TemplateInfo(
            id=template_id,
            title="",
            description="",
            version="",
            builtin=builtin,
            trusted=trusted,
            default=template_id == DEFAULT_TEMPLATE_ID,
            usable=False,
            problem=str(exc),
            variables=[],
        )
    manifest = template.manifest
    return TemplateInfo(
        id=template.id,
        title=manifest.title,
        description=manifest.description.strip(),
        version=template.version,
        builtin=builtin,
        trusted=template.trusted,
        default=template.id == DEFAULT_TEMPLATE_ID,
        usable=True,
        problem=None,
        variables=variables,
    )


def _variables(template: Template) -> list[VariableInfo]:
    # questions_for leaves out a question whose `when` is false for these answers; a listing
    # shows every variable, so the conditions are lifted here and reported beside each one.
    conditions = {name: q.when for name, q in template.manifest.questions.items() if q.when}
    questions = {name: q.model_copy(update={"when": None}) for name, q in template.manifest.questions.items()}
    unconditional = template.manifest.model_copy(update={"questions": questions})
    asked = questions_for(dataclasses.replace(template, manifest=unconditional), {})
    return [
        VariableInfo(
            name=q.id,
            type=q.type,
            prompt=q.question,
            help=q.help,
            default=q.default,
            choices=q.options,
            pattern=_pattern(template, q.id),
            when=conditions.get(q.id),
        )
        for q in asked
    ]


def _pattern(template: Template, name: str) -> str | None:
    question = template.manifest.questions.get(name)
    return question.pattern if question is not None else None
