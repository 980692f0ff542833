"""How a run fails, and how it says why."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, is_cancelled_exception

# The failure type a task slice reports a failed task with; its details name the task.
TASK_FAILED = "TaskFailed"


class GenerationFailed(Exception):
    """The run ends failed, with this message as the project's error."""


def cancels_the_run(exc: BaseException) -> bool:
    """Whether ``exc`` is the run's own cancel reaching it: as a CancelledError, or as the
    activity or child it was waiting for, cancelled with it (an ActivityError or
    ChildWorkflowError whose cause is the cancel; what an awaited activity answers once its
    run is cancelled). An activity or child cancelled by someone else while the run was not
    (an operator, in the Web UI) is a failure of the run, as Temporal closes it."""
    if isinstance(exc, (asyncio.CancelledError, CancelledError)):
        return True
    return is_cancelled_exception(exc) and workflow.cancellation_reason() is not None


def cancelled_within(exc: BaseException) -> bool:
    """Whether ``exc`` is a cancel, or wraps one (a DagFailed of a task cancelled with its
    run, or after a sibling failed): looked for through its chain of causes."""
    cause: BaseException | None = exc
    while cause is not None:
        if is_cancelled_exception(cause):
            return True
        cause = cause.__cause__
    return False


def ended_as(exc: BaseException) -> str:
    """What became of a task its run was waiting for when ``exc`` came: the ``tasks``
    query's "cancelled" or "failed"."""
    return "cancelled" if cancelled_within(exc) else "failed"


def describe(exc: BaseException, *, through: tuple[type[BaseException], ...] = ()) -> str:
    """The root cause's message: an ActivityError's own says only "Activity task failed".
    ``through`` names further wrapper exceptions to look past."""
    while isinstance(exc, (ActivityError, *through)) and exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, ApplicationError):
        return exc.message or exc.type or "ApplicationError"
    return str(exc) or type(exc).__name__
