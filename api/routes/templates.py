"""The templates a project can be made from, and their variables: what to send in a create."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from api.auth_first import AuthFirstRoute
from api.catalog import TemplateNotFound, describe_template, list_templates, template_versions
from api.deps import ReaderDep, SettingsDep
from api.errors import (
    ERROR_RESPONSES,
    ErrorResponse,
    template_not_found,
    template_source_unavailable,
    template_unusable,
)
from engine import EngineError
from engine.sources import SourceUnavailable

router = APIRouter(route_class=AuthFirstRoute, prefix="/templates", tags=["templates"], responses=ERROR_RESPONSES)

TemplateId = Annotated[str, Path(min_length=1, max_length=200, description="Template id")]


class TemplateVariable(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str = Field(description="The create request's field (or `answers` key) for it")
    type: Literal["boolean", "single_choice", "text"] = Field(
        description='As a project\'s questions show it; a boolean takes "y" or "n"'
    )
    prompt: str
    help: str
    default: Any = Field(description="What an absent field becomes: the author's default, rendered")
    choices: list[str] | None = Field(description="The allowed values of a single_choice")
    pattern: str | None = Field(description="A regular expression a text value must match")
    when: str | None = Field(description="Asked only when this Jinja condition holds (null: always)")


class TemplatePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description='The create request\'s `"template"`')
    title: str
    description: str
    version: str
    builtin: bool = Field(description="Shipped with forgeflow")
    trusted: bool = Field(description="Its hooks and check commands may run (built-ins, FORGEFLOW_TRUSTED_TEMPLATES)")
    default: bool = Field(description="Used when a create names no template")
    usable: bool = Field(description="False: a create with it is refused as template_unusable")
    problem: str | None = Field(description="Why it is not usable")
    variables: list[TemplateVariable]
    format: Literal["cookiecutter", "copier"] = Field(description="The template's format")
    source: bool = Field(description='A registered git source: a create may pin a version, `"<id>@<ref>"`')
    commit: str | None = Field(description="A source's: the commit described, its default branch's now")


class TemplateList(BaseModel):
    templates: list[TemplatePublic]


# Plain ``def``: describing a template renders its defaults (CPU work), off the event loop.
@router.get("", response_model=TemplateList, summary="Templates and their variables")
def read_templates(_: ReaderDep, settings: SettingsDep) -> TemplateList:
    """Every template this API can use, by id, with each variable's type, default and choices."""
    return TemplateList(templates=[TemplatePublic.model_validate(t) for t in list_templates(settings)])


@router.get(
    "/{template_id}",
    response_model=TemplatePublic,
    summary="One template and its variables",
    responses={404: {"model": ErrorResponse, "description": "No such template (template_not_found)"}},
)
def read_template(template_id: TemplateId, _: ReaderDep, settings: SettingsDep) -> TemplatePublic:
    """One template; an unknown id is 404 template_not_found (``details.available``)."""
    try:
        return TemplatePublic.model_validate(describe_template(settings, template_id))
    except TemplateNotFound as exc:
        raise template_not_found(exc.template_id, exc.available) from exc


class TemplateVersionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    ref: str | None = Field(description='A tag or branch a create may name (`"<id>@<ref>"`); null for a directory')
    kind: Literal["tag", "branch", "directory"]
    commit: str | None = Field(description="The commit the ref names now (an annotated tag's target)")
    version: str | None = Field(default=None, description="A directory template's version")
    digest: str | None = Field(default=None, description="A directory template's content digest")


class TemplateVersionList(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    template: str
    source: bool = Field(description="A registered git source (else a directory, with one version)")
    default_ref: str | None = Field(description="The default branch: what a create naming no ref gets")
    versions: list[TemplateVersionPublic]


@router.get(
    "/{template_id}/versions",
    response_model=TemplateVersionList,
    summary="The versions a create may pin",
    responses={404: {"model": ErrorResponse, "description": "No such template (template_not_found)"}},
)
def read_template_versions(template_id: TemplateId, _: ReaderDep, settings: SettingsDep) -> TemplateVersionList:
    """A source's tags and branches with their commits (``git ls-remote``, now); a directory
    template's one version. An unreachable source is 400 template_source_unavailable."""
    try:
        return TemplateVersionList.model_validate(template_versions(settings, template_id))
    except TemplateNotFound as exc:
        raise template_not_found(exc.template_id, exc.available) from exc
    except SourceUnavailable as exc:
        raise template_source_unavailable(exc.template_id) from exc
    except EngineError as exc:
        raise template_unusable(template_id, str(exc)) from exc
