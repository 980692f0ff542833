"""Runs on demand: ``POST /projects/{id}/runs`` with a client's change request ("add CSV
export") starts a new run of a ready agent-mode project whose tasks a coding agent builds.
The run asks the model about the change (clarify), writes the spec's next version and a
plan of only the new tasks (reviewed like any spec when the project was created with
``require_approval``), and builds them on top of the last ready run's main
(``trigger: "prompt"``), so its diff is the change alone.

Checked here, before anything starts: the body (400), the project (agent mode with a coding
agent, 400 ``runs_unavailable``; ready, 409 ``invalid_state``), and its last ready run (its
history and the spec it was built from). A run still going is a 409 from Temporal itself
(WorkflowIDConflictPolicy.FAIL), so two concurrent requests never start two runs."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api.agent_mode import retried_agent_mode
from api.errors import ApiError, invalid_state
from api.lifecycle_schemas import ActionResult, Strict
from api.run_start import record_started_run, start_next_run
from api.template_refs import run_name
from forgeflow.settings import Settings
from store.db import Database
from store.event_filter import EventFilter
from store.lifecycle import NewEvent, append_events, list_events, list_runs, list_spec_versions
from store.models import Project, utcnow
from workflows.agent_types import AgentMode
from workflows.change_types import MAX_CHANGE_CHARS, ChangeRequest
from workflows.types import ProjectGenerationInput
from workflows.update_types import HistoryBase

# The event a run on demand starts with: the change as the client sent it.
CHANGE_REQUESTED = "change_requested"
# A run's choice of review of its build; None: the project's.
ReviewChoice = Literal["diff", "none"] | None
# What a run's history base message quotes of the change: its first line, this long at most.
SUBJECT_CHARS = 72


class RunCreate(Strict):
    # Whitespace around the request means nothing; inside it, every character is kept as sent.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    prompt: str = Field(
        min_length=1,
        max_length=MAX_CHANGE_CHARS,
        description="The change to make, in the client's words; given to the model as data, never as "
        "instructions. At most 20,000 characters, and at most FORGEFLOW_LLM_MAX_BRIEF_CHARS",
    )
    review: Literal["diff", "none"] | None = Field(
        default=None,
        description='This run\'s build: "diff" waits at awaiting_review with its diff ready before it is exported, '
        '"none" exports it once verified; absent: the project\'s agent.review',
    )


def runs_unavailable(reason: str) -> ApiError:
    return ApiError(
        400, "runs_unavailable", "validation", f"This project cannot take a run on demand: {reason}.", details={}
    )


def _too_long(limit: int) -> ApiError:
    return ApiError(
        400,
        "invalid_payload",
        "validation",
        f"Invalid value for prompt: a change request may have at most {limit} characters "
        "(FORGEFLOW_LLM_MAX_BRIEF_CHARS).",
        details={"field": "prompt", "max_chars": limit},
    )


def base_message(run_number: int, prompt: str) -> str:
    """The base's message, from the request alone: a retried start makes the same commit."""
    first = " ".join(next((line for line in prompt.splitlines() if line.strip()), "").split())
    subject = first if len(first) <= SUBJECT_CHARS else first[: SUBJECT_CHARS - 1].rstrip() + "…"
    return f"Run {run_number}: {subject}"


def _run_input(
    db: Database, project: Project, settings: Settings, owner: str, prompt: str, review: ReviewChoice = None
) -> ProjectGenerationInput:
    run_number = project.current_run + 1
    with db.session() as session:
        ready = [r for r in list_runs(session, project_id=project.id, statuses=("ready",)) if r.bundle_key]
        versions = {v.version: v for v in list_spec_versions(session, project_id=project.id)}
        last = ready[-1] if ready else None
        spec = versions.get(last.spec_version) if last is not None else None
        if last is None or last.bundle_key is None or spec is None:
            raise invalid_state("The project has no ready run with a stored history and spec to build on.", "ready")
        base = HistoryBase(bundle_key=last.bundle_key, message=base_message(run_number, prompt))
        answers, spec_version, newest = dict(spec.answers), spec.version, max(versions)
    payload = project.input_payload
    return ProjectGenerationInput(
        project_id=project.id,
        owner=owner,
        name=project.name,
        slug=project.slug,
        template=run_name(project),  # a source's pinned to the project's commit
        answers=answers,  # the project's: its template's questions are not asked again
        **settings.run_tuning,
        run_number=run_number,
        trigger="prompt",
        owner_id=project.owner_id,
        webhook_url=project.webhook_url,
        # As the project was created: its gates hold the change's questions and spec delta too.
        wait_for_answers=bool(payload.get("ask_questions")),
        require_approval=project.require_approval,
        first_spec_version=newest + 1,
        agent=_with_review(retried_agent_mode(project, settings), review),
        base=base,
        change=ChangeRequest(prompt=prompt, spec_version=spec_version, review=review),
    )


def change_retry_input(
    db: Database, project: Project, settings: Settings, owner: str, change: ChangeRequest
) -> ProjectGenerationInput:
    """A retry of a run on demand that failed or was cancelled: the same change on the same
    history. Once the change's spec version was approved, no model is asked again: its plan
    is built as it was, the tasks the run finished kept; before that, the change is planned
    again from its start (the project's gates as they were)."""
    run = _run_input(db, project, settings, owner, change.prompt, change.review)
    with db.session() as session:
        versions = list_spec_versions(session, project_id=project.id)
    written = [v for v in versions if v.version > change.spec_version]
    approved = [v for v in written if v.approved_at is not None]
    # With no approval gate, the last version written was built as it was written.
    settled = approved[-1] if approved else (written[-1] if written and not project.require_approval else None)
    if settled is not None and "plan.json" in settled.documents:
        return run.model_copy(
            update={
                "trigger": "retry",
                "require_approval": False,
                "approved_spec_version": settled.version,
                "resume_from_run": project.current_run,
            }
        )
    return run.model_copy(update={"trigger": "retry"})


def _with_review(agent: AgentMode | None, review: ReviewChoice) -> AgentMode | None:
    """The project's agent mode with this run's choice of review, where it made one."""
    if agent is None or review is None:
        return agent
    return agent.model_copy(update={"review": "diff" if review == "diff" else None})


def _record(db: Database, run: ProjectGenerationInput) -> None:
    """The run's row, then the change it was asked for, on record as an event of the run:
    what the client reads back (``/events?run=N``) and what a retry of the run builds again."""
    record_started_run(db, run)
    assert run.change is not None
    payload = {"run": run.run_number, **run.change.model_dump(mode="json")}
    event = NewEvent(type=CHANGE_REQUESTED, key=f"{CHANGE_REQUESTED}:{run.run_number}:request", payload=payload)
    with db.session(write_lock=True) as session:
        append_events(session, project_id=run.project_id, events=[event], at=utcnow())


def retried_change(session: Session, project: Project) -> ChangeRequest | None:
    """The change a retry of the project's last run builds again: the run on demand that
    failed (or was cancelled) after its last ready run, if that is what it was; else None."""
    runs = list_runs(session, project_id=project.id)
    since_ready = [r for r in runs if r.number > max((r.number for r in runs if r.status == "ready"), default=0)]
    asked = [r for r in since_ready if r.trigger == "prompt"]
    if not asked:
        return None
    where = EventFilter(types=(CHANGE_REQUESTED,), run=asked[-1].number)
    events = list_events(session, project_id=project.id, after=0, limit=1, where=where)
    return ChangeRequest.model_validate(events[0].payload) if events else None


async def start_prompt_run(
    *, db: Database, temporal: Client, settings: Settings, project: Project, owner: str, body: RunCreate
) -> ActionResult:
    if not project.agent:
        raise runs_unavailable("it is not in agent mode (a change is planned by the model from the project's spec)")
    if not project.agent.get("coding_agent"):
        raise runs_unavailable("it has no coding agent to build the change (agent.coding_agent)")
    limit = min(MAX_CHANGE_CHARS, settings.llm_max_brief_chars)
    if len(body.prompt) > limit:
        raise _too_long(limit)
    if not project.artifact_ready or project.status not in ("ready", "failed", "cancelled"):
        raise invalid_state(
            "Only a ready project takes a run on demand (or one whose last run failed or was cancelled, "
            "on top of its last ready run); this one has a run in progress or none finished.",
            project.status,
        )
    workflow_input = await run_in_threadpool(_run_input, db, project, settings, owner, body.prompt, body.review)
    await start_next_run(temporal, workflow_input, task_queue=settings.task_queue, status=project.status)
    await run_in_threadpool(_record, db, workflow_input)
    return ActionResult(
        id=project.id, status="queued", phase="queued", accepted="prompt", run=workflow_input.run_number
    )
