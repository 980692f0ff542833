"""Fixtures of the workflow tests."""

from __future__ import annotations

import pytest

from store.projects import create_project

TEMPLATE = "widget-lib"


@pytest.fixture
def project_row(db, make_key):
    def make(**answers):
        key = make_key()
        with db.session() as session:
            project = create_project(
                session,
                owner_id=key.owner_id,
                quota=100,
                name="Widget Lib",
                slug="widget_lib",
                description="",
                template=TEMPLATE,
                input_payload=answers,
            )
        return key, project.id

    return make


def activities_with_task(settings, db, task_core):
    """The worker's activities, with each task's work replaced by ``task_core(input, real)``:
    ``run_task`` and ``run_tasks`` (tasks that share an activity) both go through it."""
    from forgeflow.worker import build_activities

    activities = build_activities(settings, db)
    generation = next(a.__self__ for a in activities if a.__name__ == "run_task")
    real = generation._run_task
    generation._run_task = lambda input, pulse: task_core(input, lambda one: real(one, pulse))
    return activities
