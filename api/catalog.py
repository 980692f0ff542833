"""What ``GET /templates`` tells: each template the API can use, its variables with the
type, rendered default and choices a client would be asked for, and whether it is trusted;
and what ``GET /templates/{id}/versions`` tells: the refs a create may pin.

A registered source is described at the commit its default branch points at now.

The engine's own question logic (``engine.questions.questions_for``) describes each
variable, so a listed type or default is exactly what a project's questions would show."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from engine import EngineError
from engine.copier_answers import walk
from engine.lru import LRU
from engine.questions import questions_for
from engine.sources import SourceUnavailable, remote_refs
from engine.templates import (
    BUILTIN_TEMPLATES_DIR,
    DEFAULT_TEMPLATE_ID,
    Template,
    available_templates,
    discover_templates,
    resolve_template,
    search_dirs,
)
from engine.templates import load_template as engine_load_template
from forgeflow.settings import Settings

log = logging.getLogger("forgeflow.api")


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
    format: str = "cookiecutter"  # or "copier"
    source: bool = False  # a registered git source: it has versions
    commit: str | None = None  # a source's: the commit described (its default branch's)


class TemplateNotFound(Exception):
    def __init__(self, template_id: str, available: list[str]) -> None:
        super().__init__(template_id)
        self.template_id, self.available = template_id, available


# A description is a pure function of the template's content and trust: keep it, so a
# listing does not build every template's cookiecutter context on every request.
_described: LRU[tuple[str, str, bool], list[VariableInfo]] = LRU(64)


def list_templates(settings: Settings) -> list[TemplateInfo]:
    return [describe_template(settings, template_id) for template_id in _available(settings)]


def _available(settings: Settings) -> list[str]:
    return available_templates(settings.template_path, settings.template_source_registry)


def describe_template(settings: Settings, template_id: str) -> TemplateInfo:
    sources = settings.template_source_registry
    source = sources.url(template_id) is not None
    path = None if source else discover_templates(search_dirs(settings.template_path)).get(template_id)
    if path is None and not source:
        raise TemplateNotFound(template_id, _available(settings))
    builtin = path is not None and path.parent == BUILTIN_TEMPLATES_DIR
    trusted = builtin or template_id in settings.trusted_template_ids
    try:
        # A source: its default branch, now (a create that names no ref gets the same).
        name = resolve_template(template_id, sources=sources)
        template = engine_load_template(
            name, template_path=settings.template_path, trusted_ids=settings.trusted_template_ids, sources=sources
        )
        key = (str(template.path), template.digest, template.trusted)
        variables = _described.get_or_make(key, lambda: _variables(template))
    except EngineError as exc:
        # Listed all the same, with the reason a create would be refused (template_unusable):
        # an operator sees why a template they added does not work. Not what git said of an
        # unreachable source, which names the operator's URL (the API's log has it).
        problem = "its git source cannot be read now" if isinstance(exc, SourceUnavailable) else str(exc)
        if isinstance(exc, SourceUnavailable):
            log.warning("template source unavailable: %s", exc)
        return TemplateInfo(
            id=template_id,
            title="",
            description="",
            version="",
            builtin=builtin,
            trusted=trusted,
            default=template_id == DEFAULT_TEMPLATE_ID,
            usable=False,
            problem=problem,
            variables=[],
            source=source,
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
        format=template.format,
        source=source,
        commit=template.origin.commit if template.origin else None,
    )


def _variables(template: Template) -> list[VariableInfo]:
    if template.format == "copier":
        return _copier_variables(template)
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


def _copier_variables(template: Template) -> list[VariableInfo]:
    # Every question, whatever its `when` (shown beside it), with its default for no answers.
    return [
        VariableInfo(
            name=q.name,
            type=q.type,
            prompt=q.help.strip().splitlines()[0] if q.help.strip() else q.name.replace("_", " ").capitalize(),
            help=q.help.strip(),
            default=q.default,
            choices=q.options,
            pattern=None,
            when=q.raw_when,
        )
        for q in walk(template, {}).questions
    ]


@dataclass(frozen=True)
class VersionInfo:
    ref: str | None  # a tag or branch name; None for a directory's one version
    kind: str  # tag | branch | directory
    commit: str | None
    version: str | None = None  # a directory's (its manifest's, or its digest's start)
    digest: str | None = None


@dataclass(frozen=True)
class TemplateVersions:
    template: str
    source: bool
    default_ref: str | None  # the default branch: what a create naming no ref gets
    versions: list[VersionInfo]


def template_versions(settings: Settings, template_id: str) -> TemplateVersions:
    """A source's tags and branches, each with its commit, as its repository lists them
    now; a directory template's one version. Raises TemplateNotFound, or the engine's
    SourceUnavailable / EngineError for the caller to answer."""
    sources = settings.template_source_registry
    if sources.url(template_id) is not None:
        refs = remote_refs(template_id, sources)
        versions = [VersionInfo(ref=name, kind="tag", commit=commit) for name, commit in sorted(refs.tags.items())]
        versions += [VersionInfo(ref=name, kind="branch", commit=c) for name, c in sorted(refs.branches.items())]
        return TemplateVersions(template=template_id, source=True, default_ref=refs.default_branch, versions=versions)
    if template_id not in discover_templates(search_dirs(settings.template_path)):
        raise TemplateNotFound(template_id, _available(settings))
    template = engine_load_template(
        template_id, template_path=settings.template_path, trusted_ids=settings.trusted_template_ids
    )
    one = VersionInfo(ref=None, kind="directory", commit=None, version=template.version, digest=template.digest)
    return TemplateVersions(template=template_id, source=False, default_ref=None, versions=[one])
