"""Sending a person's decision to a project's workflow: an update (validated by the
workflow, answered at once), falling back to the equivalent signal when no worker picks
the update up in time, so the decision waits durably in Temporal for one."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError, invalid_field, invalid_fields, invalid_state, queueing_failed
from forgeflow.settings import Settings
from store.models import Project
from workflows import workflow_id_for
from workflows.types import StatusSnapshot

log = logging.getLogger("forgeflow.api")

UPDATE_TIMEOUT = 10.0
SIGNALLED = {"approve", "reject", "regenerate", "answers", "pause", "resume", "raise_budget"}


async def steer(
    temporal: Client, project: Project, name: str, arg: Any, *, timeout: float = UPDATE_TIMEOUT
) -> StatusSnapshot | None:
    """Run the update ``name``; None means it was queued as a signal instead."""
    handle = temporal.get_workflow_handle(workflow_id_for(project.id))
    try:
        return await asyncio.wait_for(handle.execute_update(name, arg, result_type=StatusSnapshot), timeout=timeout)
    except WorkflowUpdateFailedError as exc:
        raise _refusal(exc.cause, project) from exc
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        if name not in SIGNALLED:
            raise queueing_failed() from None
        log.info("no worker took the %s update of project %s in time; sending a signal", name, project.id)
        await _signal(handle, name, arg)
        return None
    except RPCError as exc:
        raise _rpc_refusal(exc, project) from exc
    except (RuntimeError, OSError) as exc:  # Temporal cannot be reached at all: retryable, not a 500
        log.warning("temporal unreachable for the %s of project %s: %s", name, project.id, exc)
        raise queueing_failed() from exc


async def _signal(handle: Any, name: str, arg: Any) -> None:
    try:
        await handle.signal(name, arg, rpc_timeout=timedelta(seconds=UPDATE_TIMEOUT))
    except (RPCError, RuntimeError, OSError) as exc:
        raise queueing_failed() from exc


def _refusal(cause: BaseException | None, project: Project) -> ApiError:
    if isinstance(cause, ApplicationError):
        details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
        if cause.type == "InvalidState":
            return invalid_state(_sentence(cause.message), details.get("current_status", project.status))
        if cause.type == "InvalidInput":
            errors = details.get("errors")
            if isinstance(errors, list) and errors:  # every problem at once (workflows.validation)
                return invalid_fields([(str(e.get("field")), str(e.get("message"))) for e in errors])
            return invalid_field(details.get("field", "body"), cause.message)
    return invalid_state("The project cannot take this action now.", project.status)


def _rpc_refusal(exc: RPCError, project: Project) -> ApiError:
    if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
        # The run is over: nothing can change it any more.
        return invalid_state(f"The project is {project.status}; its run has ended.", project.status)
    log.warning("temporal refused a call for project %s: %s", project.id, exc)
    return queueing_failed()


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


async def steer_within(
    settings: Settings, temporal: Client, project: Project, name: str, arg: Any
) -> StatusSnapshot | None:
    return await steer(temporal, project, name, arg, timeout=settings.update_timeout.total_seconds())
