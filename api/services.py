"""What the routes do, kept out of the routes: normalising a create request, counting
quota, starting the workflow, and undoing the row if the workflow does not start."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from api.agent_mode import AGENT_FIELDS, requested_agent_mode
from api.errors import (
    ApiError,
    invalid_field,
    invalid_fields,
    invalid_slug,
    queueing_failed,
    quota_exceeded,
    reserved_slug,
    template_unusable,
)
from api.run_start import start_run
from api.schemas import FIELD_RULES, ProjectCreate
from api.template_refs import RequestedTemplate, load_requested
from api.validation import check_answers, check_value
from engine import EngineError, InvalidAnswer
from engine.context import accepts_answer, validate_answers
from engine.slugs import is_reserved_slug, normalise_project_slug
from engine.templates import DEFAULT_TEMPLATE_ID as DEFAULT_TEMPLATE
from engine.templates import Template
from forgeflow.netguard import WebhookURLError, check_webhook_url
from forgeflow.settings import Settings
from store.db import Database
from store.keys import Identity
from store.models import Project
from store.projects import QuotaExceeded, abandon_project, create_project, discard_project
from workflows.agent_types import AgentMode
from workflows.types import (
    ProjectGenerationInput,
)

log = logging.getLogger("forgeflow.api")


RUN_OPTIONS = ("require_approval", "ask_questions", "webhook_url")


@dataclass(frozen=True)
class NormalisedRequest:
    template: Template
    slug: str
    payload: dict[str, Any]  # echoed as input_payload
    answers: dict[str, Any]  # the template context the workflow starts from
    options: dict[str, Any]  # require_approval, ask_questions, webhook_url
    requested: RequestedTemplate  # the template as the run names it, with a source's ref and commit
    agent: AgentMode | None = None  # agent mode: the brief, the configured model, the budget


def normalise_request(body: ProjectCreate, identity: Identity, settings: Settings) -> NormalisedRequest:
    """The request as the template will see it: slug normalised (or derived from the
    name), an empty author_email filled from the owner's, absent fields left out so the
    template's defaults apply, everything checked against the template's variables."""
    # Agent mode first: without a provider nothing else about the request matters.
    agent = requested_agent_mode(body, settings)
    payload = body.model_dump(exclude_none=True)
    options: dict[str, Any] = {k: payload.pop(k) for k in RUN_OPTIONS if k in payload}
    agent_fields: dict[str, Any] = {k: payload.pop(k) for k in AGENT_FIELDS if k in payload}
    # Template variables sent outside the typed fields, at the top level or in ``answers``,
    # are held to the same rules as those fields (api.validation).
    for name, value in (body.model_extra or {}).items():
        check_value(name, name)
        check_value(name, value)
    extra_answers = check_answers(payload.pop("answers", {}), prefix="answers.", fields=FIELD_RULES)
    if extra_answers.get("author_email") == "":
        del extra_answers["author_email"]  # empty means "the owner's", as at the top level
    template_id = payload.pop("template", None) or DEFAULT_TEMPLATE
    # A source's ref is resolved to a commit now: that commit is what the run renders.
    requested = load_requested(template_id, settings)
    template = requested.template
    slug = normalise_project_slug(payload.get("project_slug") or payload["project_name"])
    if not slug:
        raise invalid_slug()
    if is_reserved_slug(slug):
        raise reserved_slug(slug)
    if "project_slug" in template.variables:
        payload["project_slug"] = slug
    if (
        "author_email" in template.variables
        and not (payload.get("author_email") or "author_email" in extra_answers)
        # An owner address the template refuses (an old dev key's dev@localhost) is not
        # filled in: the template's default applies, as for any absent field.
        and accepts_answer(template, "author_email", identity.owner_email)
    ):
        payload["author_email"] = identity.owner_email
    for name, value in extra_answers.items():
        if name in payload and payload[name] != value:
            raise invalid_field(f"answers.{name}", f"differs from the top-level {name}")
    try:
        # Without questions asked later, a required variable must be answered now.
        answers = validate_answers(template, {**payload, **extra_answers}, complete=not options.get("ask_questions"))
    except InvalidAnswer as exc:
        named = [(f"answers.{e.field}" if e.field in extra_answers else e.field, e.message) for e in exc.errors]
        raise invalid_fields(named) from exc
    except EngineError as exc:  # the template's own questions cannot be evaluated
        log.error("template %s cannot check answers: %s", template.id, exc)
        raise template_unusable(template.id, str(exc)) from exc
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
    payload.update(agent_fields)
    return NormalisedRequest(
        template=template,
        slug=slug,
        payload=payload,
        answers=answers,
        options=options,
        requested=requested,
        agent=agent,
    )


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
                template_ref=request.requested.ref,
                template_commit=request.requested.commit,
                agent=None if request.agent is None else request.agent.model_dump(mode="json"),
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
        template=request.requested.run_name,
        answers=request.answers,
        **settings.run_tuning,
        require_approval=bool(request.options.get("require_approval")),
        wait_for_answers=bool(request.options.get("ask_questions")),
        webhook_url=request.options.get("webhook_url"),
        owner_id=identity.owner_id,
        agent=request.agent,
    )
    try:
        # A retried create of the same row attaches to the running workflow.
        await start_run(
            temporal, workflow_input, task_queue=settings.task_queue, conflict=WorkflowIDConflictPolicy.USE_EXISTING
        )
    except BaseException as exc:
        # Whatever stopped the start (Temporal away, an input it cannot take, the request
        # cancelled), the row must not stay behind as a queued project with no workflow.
        await _undo_create(db, project.id, exc)
        refusal = _start_failure(project.id, exc)
        if refusal is None:
            raise
        raise refusal from exc
    return project


# Errors after which the workflow may have started all the same (the request reached
# Temporal, its answer did not reach us).
_AMBIGUOUS = (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED, RPCStatusCode.UNKNOWN)


def _maybe_started(exc: BaseException) -> bool:
    if isinstance(exc, RPCError):
        return exc.status in _AMBIGUOUS
    return isinstance(exc, asyncio.CancelledError | TimeoutError)


async def _undo_create(db: Database, project_id: int, exc: BaseException) -> None:
    """Remove the row of a create whose workflow did not start; if it may have started, keep
    the row (on SQLite a deleted id is handed out again, and the next create would attach to
    that workflow) but fail and archive it, so it is neither counted nor listed."""
    undo = _abandon if _maybe_started(exc) else _discard
    try:
        # Shielded: a create cancelled while its row is undone still undoes it.
        await asyncio.shield(run_in_threadpool(undo, db, project_id))
    except Exception:
        log.exception("could not undo project %s after its workflow failed to start", project_id)


def _start_failure(project_id: int, exc: BaseException) -> ApiError | None:
    """The answer to a create whose workflow did not start; None: let the error go on."""
    if isinstance(exc, ValueError | TypeError | RecursionError):
        # The workflow input could not be encoded: nothing a retry would change.
        log.warning("the workflow input of project %s cannot be encoded: %s", project_id, exc)
        return invalid_field("body", "the request cannot be queued (its values cannot be encoded)")
    if isinstance(exc, RPCError | RuntimeError | OSError):
        log.warning("could not start the workflow of project %s: %s", project_id, exc)
        return queueing_failed()
    return None


def _discard(db: Database, project_id: int) -> None:
    with db.session(write_lock=True) as session:
        discard_project(session, project_id=project_id)


def _abandon(db: Database, project_id: int) -> None:
    with db.session(write_lock=True) as session:
        abandon_project(session, project_id=project_id, reason="The project could not be queued.")
