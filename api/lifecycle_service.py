"""Lifecycle actions: checked here against what the API can know, then handed to the
workflow, which has the final word (its update validators)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from api.agent_mode import answer_text_limit, retried_agent_mode, typed_answers
from api.errors import invalid_fields, invalid_state, queueing_failed
from api.lifecycle_schemas import ActionResult
from api.run_start import record_started_run, start_next_run
from api.runs_service import change_retry_input, retried_change
from api.schemas import FIELD_RULES, OPT_IN_FIELDS
from api.steering import steer_within
from api.template_refs import run_name
from api.update_service import update_base
from api.validation import check_answers
from engine import EngineError, InvalidAnswer
from engine.context import validate_answers
from engine.templates import load_template
from forgeflow.settings import Settings
from store.db import Database
from store.lifecycle import list_spec_versions
from store.models import Project, SpecVersion
from workflows import workflow_id_for
from workflows.types import TERMINAL_STATUSES, AnswersUpdate, ProjectGenerationInput, StatusSnapshot


def result_of(project: Project, snapshot: StatusSnapshot | None) -> ActionResult:
    """The state the run stored once it accepted the action (its update answers only then),
    or, queued as a signal for want of a worker, the state before it."""
    if snapshot is None:
        return ActionResult.model_validate(
            {
                "id": project.id,
                "status": project.status,
                "phase": project.phase,
                "paused": project.paused,
                "queued": True,
            }
        )
    return ActionResult.model_validate(
        {"id": project.id, "status": snapshot.status.value, "phase": snapshot.phase.value, "paused": snapshot.paused}
    )


async def submit_answers(
    *, temporal: Client, settings: Settings, project: Project, answers: dict[str, Any]
) -> ActionResult:
    # What was sent is checked first, like any body (400 before 409).
    sent = check_answers(answers, prefix="", fields=FIELD_RULES)
    if project.status != "awaiting_answers":
        raise invalid_state("The project is not waiting for answers.", project.status)

    def check() -> dict[str, Any]:
        try:
            template = load_template(
                run_name(project),
                template_path=settings.template_path,
                trusted_ids=settings.trusted_template_ids,
                sources=settings.template_source_registry,
            )
        except EngineError as exc:
            raise invalid_state(f"The project's template cannot be loaded: {exc}", project.status) from exc
        # Every problem at once: the values (the template's rules; a model's own questions in
        # agent mode, which are no template variables, by the type they were asked with) and,
        # against the open questions as stored, what was not asked and what is required. The
        # workflow checks the latter again, on its own state, and has the final word.
        asked = {q["id"]: q for q in project.questions or []}
        unasked = [name for name in sent if asked and name not in asked]
        own = {k: v for k, v in sent.items() if k in asked and (k not in template.variables or k.startswith("_"))}
        problems = [(name, "is not a question of this project") for name in unasked]
        problems += [(i, "is required") for i, q in asked.items() if q.get("required") and i not in sent]
        typed, wrong = typed_answers(own, asked, max_text=answer_text_limit(settings))
        clean: dict[str, Any] = {}
        try:
            clean = validate_answers(template, {k: v for k, v in sent.items() if k not in unasked and k not in own})
        except InvalidAnswer as exc:
            problems = [(e.field, e.message) for e in exc.errors] + problems
        problems = wrong + problems
        if problems:
            raise invalid_fields(problems)
        return {**clean, **typed}

    clean = await run_in_threadpool(check)
    return result_of(project, await steer_within(settings, temporal, project, "answers", AnswersUpdate(answers=clean)))


async def cancel_project(*, temporal: Client, project: Project, wait: float = 0) -> ActionResult:
    """Ask the run to cancel, then wait up to ``wait`` seconds for it to store its end:
    answered ``cancelled`` once it has, else with the accepted action and the status it
    will reach (the request is durable in Temporal; the run acts on it when it can)."""
    if project.status in TERMINAL_STATUSES:
        raise invalid_state(
            f"The project is {project.status}; only a running project can be cancelled.", project.status
        )
    handle: WorkflowHandle[Any, Any] = temporal.get_workflow_handle(workflow_id_for(project.id))
    try:
        await handle.cancel()
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise invalid_state("The project's run has already ended.", project.status) from exc
        raise queueing_failed() from exc
    except (RuntimeError, OSError) as exc:  # Temporal cannot be reached at all
        raise queueing_failed() from exc
    if wait > 0 and await _ended_within(handle, wait):
        return ActionResult(id=project.id, status="cancelled", phase="cancelled", paused=project.paused)
    return ActionResult(id=project.id, status="cancelled", phase=project.phase, accepted="cancel")


async def _ended_within(handle: WorkflowHandle[Any, Any], wait: float) -> bool:
    """Whether the run stores its end within ``wait`` seconds: it has closed, or its status
    says it has ended while it hands its last webhook deliveries on (for up to
    ``webhook_grace_seconds``, all of which a receiver that is down takes)."""

    async def ended() -> None:
        while True:
            with contextlib.suppress(Exception):  # the run ends cancelled (or, racing, otherwise)
                description = await handle.describe()
                if description.status is not None and description.status != WorkflowExecutionStatus.RUNNING:
                    return
                if (await handle.query("status", result_type=StatusSnapshot)).status in TERMINAL_STATUSES:
                    return
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(ended(), timeout=wait)
    except TimeoutError:
        return False
    return True


def _retry_input(db: Database, project: Project, settings: Settings, owner: str) -> ProjectGenerationInput:
    with db.session() as session:
        versions = list_spec_versions(session, project_id=project.id)
        change = retried_change(session, project)
    if change is not None:  # a run on demand: the same change, on the same history
        return change_retry_input(db, project, settings, owner, change)
    approved = [v for v in versions if v.approved_at is not None]
    spec = approved[-1] if approved else (versions[-1] if versions else None)
    resumed = _resumed_version(project, spec if approved or not project.require_approval else None)
    payload = project.input_payload
    answers = (
        spec.answers
        if spec
        else {**{k: v for k, v in payload.items() if k not in OPT_IN_FIELDS}, **payload.get("answers", {})}
    )
    return ProjectGenerationInput(
        project_id=project.id,
        owner=owner,
        name=project.name,
        slug=project.slug,
        template=run_name(project),  # a source's pinned to the project's commit
        answers=answers,
        **settings.run_tuning,
        run_number=project.current_run + 1,
        trigger="retry",
        owner_id=project.owner_id,
        webhook_url=project.webhook_url,
        # An approved spec is rebuilt as it was, with no new review; without one (rejected,
        # or never reviewed) the gate stays and the next review gets a new version.
        require_approval=project.require_approval and not approved,
        approved_spec_version=spec.version if approved and spec else resumed,
        first_spec_version=(spec.version + 1) if spec and not approved else 1,
        feedback=list(spec.feedback) if spec else [],
        agent=retried_agent_mode(project, settings),
        # A failed or cancelled update is retried as the update it was: on top of the
        # history of the project's last ready run, which it left downloadable.
        base=update_base(project),
        # Coding agents' run: the approved spec and plan as they were, its finished tasks kept.
        resume_from_run=project.current_run if resumed is not None else None,
    )


def _resumed_version(project: Project, spec: SpecVersion | None) -> int | None:
    """The spec version a retry of a coding agents' run resumes from: the approved one (or,
    with no approval gate, the last, approved as it was written), if it holds a plan."""
    if not (project.agent or {}).get("coding_agent") or spec is None or "plan.json" not in spec.documents:
        return None
    return spec.version


async def retry_project(
    *, db: Database, temporal: Client, settings: Settings, project: Project, owner: str
) -> ActionResult:
    if project.status not in ("failed", "cancelled"):
        raise invalid_state(
            f"The project is {project.status}; only a failed or cancelled project can be retried.", project.status
        )
    workflow_input = await run_in_threadpool(_retry_input, db, project, settings, owner)
    await start_next_run(temporal, workflow_input, task_queue=settings.task_queue, status=project.status)
    # The new run starts queued; its first write moves the project on from failed.
    await run_in_threadpool(record_started_run, db, workflow_input)
    return ActionResult(id=project.id, status="queued", phase="queued", accepted="retry", run=workflow_input.run_number)
