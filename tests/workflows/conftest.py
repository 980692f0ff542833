"""Fixtures of the workflow tests."""

from __future__ import annotations

TEMPLATE = "widget-lib"


def activities_with_task(settings, db, task_core):
    """The worker's activities, with each task's work replaced by ``task_core(input, real)``:
    ``run_task`` and ``run_tasks`` (tasks that share an activity) both go through it."""
    from forgeflow.worker import build_activities

    activities = build_activities(settings, db)
    generation = next(a.__self__ for a in activities if a.__name__ == "run_task")
    real = generation._run_task
    generation._run_task = lambda input, pulse: task_core(input, lambda one: real(one, pulse))
    return activities
