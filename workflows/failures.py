"""How a run fails, and how it says why."""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError

# The failure type a task slice reports a failed task with; its details name the task.
TASK_FAILED = "TaskFailed"


class GenerationFailed(Exception):
    """The run ends failed, with this message as the project's error."""


def describe(exc: BaseException, *, through: tuple[type[BaseException], ...] = ()) -> str:
    """The root cause's message: an ActivityError's own says only "Activity task failed".
    ``through`` names further wrapper exceptions to look past."""
    while isinstance(exc, (ActivityError, *through)) and exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, ApplicationError):
        return exc.message or exc.type or "ApplicationError"
    return str(exc) or type(exc).__name__
