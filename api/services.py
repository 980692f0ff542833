"""What the routes do, kept out of the routes: normalising a create request, counting
quota, starting the workflow, and undoing the row if Temporal cannot be reached."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.service import RPCError

from api.errors import invalid_field, invalid_slug, queueing_failed, quota_exceeded, reserved_slug, unknown_template
from api.schemas import ProjectCreate
from engine import EngineError, InvalidAnswer, UnknownTemplate
from engine.context import validate_answers
from engine.slugs import is_reserved_slug, normalise_project_slug
from engine.templates import DEFAULT_TEMPLATE_ID as DEFAULT_TEMPLATE
from engine.templates import Template, available_templates, load_template
from forgeflow.netguard import WebhookURLError, check_webhook_url
from forgeflow.settings import Settings
from store.db import Database
from store.keys import Identity
from store.models import Project
from store.projects import QuotaExceeded, create_project, discard_project
from workflows import workflow_id_for
from workflows.project_generation import ProjectGenerationWorkflow
from workflows.types import (
    SA_OWNER,
    SA_PHASE,
    SA_PROJECT_ID,
    SA_STATUS,
    SA_TEMPLATE,
    ProjectGenerationInput,
)

log = logging.getLogger("forgeflow.api")

START_TIMEOUT = timedelta(seconds=10)


RUN_OPTIONS = ("require_approval", "ask_questions", "webhook_url")


@dataclass(frozen=True)
class NormalisedRequest:
    template: Template
    slug: str
    payload: dict[str, Any]  # echoed as input_payload
    answers: dict[str, Any]  # the template context the workflow starts from
    options: dict[str, Any]  # require_approval, ask_questions, webhook_url


def normalise_request(body: ProjectCreate, identity: Identity, settings: Settings) -> NormalisedRequest:
    """The request as the template will see it: slug normalised (or derived from the
    name), an empty author_email filled from the owner's, absent fields left out so the
    template's defaults apply, everything checked against the template's variables."""
    payload = body.model_dump(exclude_none=True)
    options: dict[str, Any] = {k: payload.pop(k) for k in RUN_OPTIONS if k in payload}
    extra_answers: dict[str, Any] = payload.pop("answers", {})
    template_id = payload.pop("template", None) or DEFAULT_TEMPLATE
    try:
        template = load_template(template_id, template_path=settings.template_path)
    except UnknownTemplate as exc:
        raise unknown_template(template_id, exc.available) from exc
    except EngineError as exc:
        log.error("template %s cannot be loaded: %s", template_id, exc)
        raise unknown_template(template_id, available_templates(settings.template_path)) from exc
    slug = normalise_project_slug(payload.get("project_slug") or payload["project_name"])
    if not slug:
        raise invalid_slug()
    if is_reserved_slug(slug):
        raise reserved_slug(slug)
    if "project_slug" in template.variables:
        payload["project_slug"] = slug
    if "author_email" in template.variables and not payload.get("author_email"):
        payload["author_email"] = identity.owner_email
    for name, value in extra_answers.items():
        if name in payload and payload[name] != value:
            raise invalid_field(f"answers.{name}", f"differs from the top-level {name}")
    try:
        answers = validate_answers(template, {**payload, **extra_answers})
    except InvalidAnswer as exc:
        raise invalid_field(exc.field, exc.message) from exc
    if "webhook_url" in options:
        try:
            check_webhook_url(options["webhook_url"], allow_private=settings.webhook_allow_private)
        except WebhookURLError as exc:
            raise invalid_field("webhook_url", str(exc)) from exc
    # The echo: the request as normalised, opt-in fields included.
    if template_id != DEFAULT_TEMPLATE:
        payload["template"] = template_id
    if extra_answers:
        payload["answers"] = extra_answers
    payload.update(options)
    return NormalisedRequest(template=template, slug=slug, payload=payload, answers=answers, options=options)


async def start_project(
    *, db: Database, temporal: Client, settings: Settings, identity: Identity, body: ProjectCreate
) -> Project:
    request = await run_in_threadpool(normalise_request, body, identity, settings)
    template = request.template.id

    def insert() -> Project:
        with db.session(write_lock=True) as session:
            return create_project(
                session,
                owner_id=identity.owner_id,
                quota=identity.project_quota,
                name=body.project_name,
                slug=request.slug,
                description=body.project_description or "",
                template=template,
                input_payload=request.payload,
                require_approval=bool(request.options.get("require_approval")),
                webhook_url=request.options.get("webhook_url"),
            )

    try:
        project = await run_in_threadpool(insert)
    except QuotaExceeded as exc:
        raise quota_exceeded(exc.quota) from exc

    workflow_input = ProjectGenerationInput(
        project_id=project.id,
        owner=identity.owner_name,
        name=project.name,
        slug=project.slug,
        template=template,
        answers=request.answers,
        **settings.run_tuning,
        require_approval=bool(request.options.get("require_approval")),
        wait_for_answers=bool(request.options.get("ask_questions")),
        webhook_url=request.options.get("webhook_url"),
        owner_id=identity.owner_id,
    )
    try:
        await temporal.start_workflow(
            ProjectGenerationWorkflow.run,
            workflow_input,
            id=workflow_id_for(project.id),
            task_queue=settings.task_queue,
            # A retried create of the same row attaches to the running workflow.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(SA_PROJECT_ID, project.id),
                    SearchAttributePair(SA_OWNER, identity.owner_name),
                    SearchAttributePair(SA_STATUS, "queued"),
                    SearchAttributePair(SA_PHASE, "queued"),
                    SearchAttributePair(SA_TEMPLATE, template),
                ]
            ),
            static_summary=f"{project.name} ({project.slug}) for {identity.owner_name}",
            static_details=_static_details(project, identity, template),
            rpc_timeout=START_TIMEOUT,
        )
    except (RPCError, RuntimeError, OSError) as exc:
        log.warning("could not start the workflow of project %s: %s", project.id, exc)
        await run_in_threadpool(_discard, db, project.id)
        raise queueing_failed() from exc
    return project


def _discard(db: Database, project_id: int) -> None:
    with db.session() as session:
        discard_project(session, project_id=project_id)


def _static_details(project: Project, identity: Identity, template: str) -> str:
    wid = workflow_id_for(project.id)
    return "\n".join(
        [
            f"**Project** {project.name} (`{project.slug}`), id {project.id}",
            f"**Owner** {identity.owner_name} · **Template** `{template}`",
            "",
            f"Approve: `temporal workflow update execute --workflow-id {wid} --name approve --input '{{}}'`",
            f"Cancel: `temporal workflow cancel --workflow-id {wid}`",
        ]
    )
