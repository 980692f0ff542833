"""The template a create names (``id`` or ``id@ref``), resolved and loaded, with every way
that can fail as the client's error; and the name a project's runs know it by.

A registered source's ref is resolved here, in the API process, when the project is
created (``git ls-remote``: an unknown ref is a 400 at once), and its commit is checked out
into the template cache so the answers are checked against that very version. The run is
then started with the pinned name ``id@ref:commit`` (engine.sources), and the project row
keeps the ref and the commit."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from api.errors import (
    ApiError,
    invalid_field,
    template_source_unavailable,
    template_unusable,
    unknown_template,
    unknown_template_ref,
)
from engine import EngineError, UnknownTemplate
from engine.sources import InvalidTemplateRef, SourceUnavailable, UnknownTemplateRef, parse_spec
from engine.templates import Template, load_template, resolve_template
from forgeflow.settings import Settings
from store.models import Project

log = logging.getLogger("forgeflow.api")


@dataclass(frozen=True)
class RequestedTemplate:
    template: Template
    run_name: str  # what the run names it by: the id, or the pinned id@ref:commit
    ref: str | None  # a source's: as named (HEAD: its default branch)
    commit: str | None


def load_requested(name: str, settings: Settings) -> RequestedTemplate:
    """The template ``name`` names, now; every failure an ApiError for the client."""
    try:
        return _load(name, settings)
    except ApiError:
        raise
    except InvalidTemplateRef as exc:
        raise invalid_field("template", str(exc)) from exc
    except UnknownTemplateRef as exc:
        raise unknown_template_ref(exc.template_id, exc.ref, exc.reason) from exc
    except SourceUnavailable as exc:
        log.warning("template source unavailable: %s", exc)
        raise template_source_unavailable(exc.template_id) from exc
    except UnknownTemplate as exc:
        raise unknown_template(exc.template_id, exc.available) from exc
    except EngineError as exc:
        # The operator's template is broken or unsafe (a symlink out of it, code it may not
        # run): the client is told which template and why; nothing is created.
        log.error("template %s cannot be loaded: %s", name, exc)
        raise template_unusable(name.partition("@")[0], str(exc)) from exc


def _load(name: str, settings: Settings) -> RequestedTemplate:
    sources = settings.template_source_registry
    run_name = resolve_template(name, sources=sources)
    template = load_template(
        run_name, template_path=settings.template_path, trusted_ids=settings.trusted_template_ids, sources=sources
    )
    spec = parse_spec(run_name)
    return RequestedTemplate(template=template, run_name=run_name, ref=spec.ref, commit=spec.commit)


def run_name(project: Project) -> str:
    """What the project's runs name its template by: pinned to the commit it was created at."""
    if project.template_commit:
        return f"{project.template}@{project.template_ref or 'HEAD'}:{project.template_commit}"
    return project.template
