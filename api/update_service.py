"""Template updates: a ready project's template at another version, rendered with the
project's answers and committed on top of the project's last generated commit, by an
update run of the project's workflow (``trigger: "update"``).

Checked here, before anything starts: the project (ready, from a registered git source,
not in agent mode), the version (resolved to a commit now, like a create's ref) and the
answers (the project's, kept where the new version still asks them, with the client's new
or changed ones, all held to the new version's rules)."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api.errors import ApiError, invalid_field, invalid_fields, invalid_state
from api.lifecycle_schemas import ActionResult, Strict
from api.run_start import record_started_run, start_next_run
from api.schemas import FIELD_RULES, OPT_IN_FIELDS
from api.template_refs import RequestedTemplate, load_requested
from api.validation import check_answers
from engine import InvalidAnswers
from engine.context import validate_answers
from forgeflow.settings import Settings
from store.db import Database
from store.export_keys import bundle_key
from store.lifecycle import list_spec_versions
from store.models import Project
from store.projects import set_template_version
from workflows.types import ProjectGenerationInput
from workflows.update_types import HistoryBase


class UpdateIn(Strict):
    template_version: str = Field(
        min_length=1, max_length=100, description="A tag, branch or commit of the project's template source"
    )
    answers: dict[str, Any] = Field(
        default_factory=dict,
        description="Answers to the new version's new questions, or changed ones; the project's others are kept",
    )


def update_unavailable(reason: str) -> ApiError:
    return ApiError(400, "update_unavailable", "validation", f"This project cannot be updated: {reason}.")


def history_base(*, project: Project, ref: str | None, commit: str | None) -> HistoryBase:
    # The message names only where the update goes, so a retried update makes the same commit.
    version = f"{ref or 'HEAD'} ({(commit or '')[:12]})"
    return HistoryBase(
        bundle_key=bundle_key(project.artifact_key or ""), message=f"Update template {project.template} to {version}"
    )


def update_base(project: Project) -> HistoryBase | None:
    """What a retry of ``project``'s last run builds on: the last ready run's history, which
    only a failed or cancelled update leaves behind (any other run starts by clearing it)."""
    if not project.artifact_ready or not project.artifact_key:
        return None
    return history_base(project=project, ref=project.template_ref, commit=project.template_commit)


def _version(project: Project, version: str, settings: Settings) -> RequestedTemplate:
    try:
        return load_requested(f"{project.template}@{version}", settings)
    except ApiError as exc:
        if exc.body.details.get("field") == "template":  # the client named it template_version
            exc.body.details["field"] = "template_version"
        raise


def _answers(db: Database, project: Project, requested: RequestedTemplate, sent: dict[str, Any]) -> dict[str, Any]:
    """The project's answers the new version still asks for, then the client's; every
    problem at once, each named as the field to send to fix it."""
    with db.session() as session:
        versions = list_spec_versions(session, project_id=project.id)
    approved = [v for v in versions if v.approved_at is not None]
    spec = approved[-1] if approved else (versions[-1] if versions else None)
    payload = project.input_payload
    old = (
        spec.answers
        if spec
        else {**{k: v for k, v in payload.items() if k not in OPT_IN_FIELDS}, **payload.get("answers", {})}
    )
    variables = requested.template.variables
    kept = {k: v for k, v in old.items() if k in variables and not k.startswith("_")}
    try:
        return validate_answers(requested.template, {**kept, **sent}, complete=True)
    except InvalidAnswers as exc:
        raise invalid_fields([(f"answers.{e.field}", e.message) for e in exc.errors]) from exc


def _update_input(
    db: Database, project: Project, settings: Settings, owner: str, version: str, sent: dict[str, Any]
) -> tuple[ProjectGenerationInput, RequestedTemplate]:
    requested = _version(project, version, settings)
    if project.status == "ready" and requested.commit == project.template_commit:
        raise invalid_field(
            "template_version", f"the project is already at {version} ({(requested.commit or '')[:12]})"
        )
    answers = _answers(db, project, requested, sent)
    with db.session() as session:
        versions = list_spec_versions(session, project_id=project.id)
    workflow_input = ProjectGenerationInput(
        project_id=project.id,
        owner=owner,
        name=project.name,
        slug=project.slug,
        template=requested.run_name,
        answers=answers,
        **settings.run_tuning,
        run_number=project.current_run + 1,
        trigger="update",
        owner_id=project.owner_id,
        webhook_url=project.webhook_url,
        # The project was reviewed once; an update is the template's change, shown as a diff.
        require_approval=False,
        first_spec_version=(versions[-1].version + 1) if versions else 1,
        base=history_base(project=project, ref=requested.ref, commit=requested.commit),
    )
    return workflow_input, requested


async def update_project(
    *, db: Database, temporal: Client, settings: Settings, project: Project, owner: str, body: UpdateIn
) -> ActionResult:
    sent = check_answers(body.answers, prefix="answers.", fields=FIELD_RULES)
    if project.agent:
        raise update_unavailable("a project in agent mode is built from its plan, not rendered from a template")
    if not project.template_commit:
        raise update_unavailable(
            f"its template {project.template!r} is not from a registered git source, so it has no other versions"
        )
    if not project.artifact_ready or project.status not in ("ready", "failed", "cancelled"):
        raise invalid_state(
            "Only a ready project can be updated (or one whose update failed or was cancelled).", project.status
        )
    workflow_input, requested = await run_in_threadpool(
        _update_input, db, project, settings, owner, body.template_version, sent
    )
    await start_next_run(temporal, workflow_input, task_queue=settings.task_queue, status=project.status)

    def record() -> None:
        with db.session(write_lock=True) as session:
            set_template_version(session, project_id=project.id, ref=requested.ref, commit=requested.commit)
        record_started_run(db, workflow_input)

    # Only the run that started records its version: a refused start changes nothing.
    await run_in_threadpool(record)
    return ActionResult(
        id=project.id, status="queued", phase="queued", accepted="update", run=workflow_input.run_number
    )
