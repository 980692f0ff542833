"""Starting a project's run: one way for a create and a retry alike, so both carry the same
search attributes, summary and details an operator filters and reads by."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.errors import invalid_state, queueing_failed
from store.db import Database
from store.lifecycle import ensure_run
from store.models import utcnow
from workflows import workflow_id_for
from workflows.project_generation import ProjectGenerationWorkflow
from workflows.types import SA_OWNER, SA_PHASE, SA_PROJECT_ID, SA_STATUS, SA_TEMPLATE, ProjectGenerationInput

START_TIMEOUT = timedelta(seconds=10)


def search_attributes(run: ProjectGenerationInput) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_PROJECT_ID, run.project_id),
            SearchAttributePair(SA_OWNER, run.owner),
            SearchAttributePair(SA_STATUS, "queued"),
            SearchAttributePair(SA_PHASE, "queued"),
            # The id: a source's run names it pinned (id@ref:commit), which no filter would match.
            SearchAttributePair(SA_TEMPLATE, run.template.partition("@")[0]),
        ]
    )


def static_details(run: ProjectGenerationInput) -> str:
    wid = workflow_id_for(run.project_id)
    return "\n".join(
        [
            f"**Project** {run.name} (`{run.slug}`), id {run.project_id}, run {run.run_number} ({run.trigger})",
            f"**Owner** {run.owner} · **Template** `{run.template}`",
            "",
            f"Approve: `forgeflow temporal-cli workflow update execute --workflow-id {wid} --name approve "
            "--input '{}'`",
            f"Cancel: `forgeflow temporal-cli workflow cancel --workflow-id {wid}`",
        ]
    )


async def start_run(
    temporal: Client, run: ProjectGenerationInput, *, task_queue: str, conflict: WorkflowIDConflictPolicy
) -> None:
    """Start the run's workflow. ``conflict``: USE_EXISTING attaches a repeated create to
    the run it started; FAIL refuses a retry while a run is still going."""
    await temporal.start_workflow(
        ProjectGenerationWorkflow.run,
        run,
        id=workflow_id_for(run.project_id),
        task_queue=task_queue,
        id_conflict_policy=conflict,
        search_attributes=search_attributes(run),
        static_summary=f"{run.name} ({run.slug}) for {run.owner}, run {run.run_number}",
        static_details=static_details(run),
        rpc_timeout=START_TIMEOUT,
    )


async def start_next_run(temporal: Client, run: ProjectGenerationInput, *, task_queue: str, status: str) -> None:
    """A run after the project's first (a retry, an update, a run on demand): one at a
    time, which Temporal itself enforces (a second start of the project's workflow while
    one goes is ``409 invalid_state``); Temporal out of reach is ``503 queueing_failed``."""
    try:
        await start_run(temporal, run, task_queue=task_queue, conflict=WorkflowIDConflictPolicy.FAIL)
    except WorkflowAlreadyStartedError as exc:
        raise invalid_state("The project already has a run in progress.", status) from exc
    except (RPCError, RuntimeError, OSError) as exc:
        raise queueing_failed() from exc


def record_started_run(db: Database, run: ProjectGenerationInput) -> None:
    """The run's row, queued, as soon as its workflow has started, so the run number a 202
    names can be read at once; the run's first write finds it (or, first, makes it)."""
    with contextlib.suppress(IntegrityError), db.session(write_lock=True) as session:  # made by the run already
        ensure_run(session, project_id=run.project_id, number=run.run_number, trigger=run.trigger, at=utcnow())
