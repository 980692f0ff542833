"""The worker's tuning settings: read from FORGEFLOW_ variables, refused out of bounds."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from forgeflow.settings import Settings


def test_tuning_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("FORGEFLOW_ACTIVITY_THREADS", "3")
    monkeypatch.setenv("FORGEFLOW_MIN_TASKS_PER_PACK", "1")
    settings = Settings()
    assert settings.activity_threads == 3 and settings.min_tasks_per_pack == 1
    monkeypatch.delenv("FORGEFLOW_ACTIVITY_THREADS")
    monkeypatch.delenv("FORGEFLOW_MIN_TASKS_PER_PACK")
    defaults = Settings()
    assert (defaults.activity_threads, defaults.min_tasks_per_pack) == (16, 8)


@pytest.mark.parametrize(
    ("name", "value"),
    [("activity_threads", 0), ("activity_threads", 257), ("min_tasks_per_pack", 0), ("min_tasks_per_pack", 26)],
)
def test_tuning_settings_out_of_bounds_are_refused(name, value):
    with pytest.raises(ValidationError) as refused:
        Settings(**{name: value})
    assert refused.value.errors()[0]["loc"] == (name,)


def test_every_workflow_start_carries_the_run_tuning():
    from workflows.types import ProjectGenerationInput

    settings = Settings(max_parallel_tasks=3, tasks_per_batch=40, min_tasks_per_pack=2)
    tuning = settings.run_tuning
    assert set(tuning) <= set(ProjectGenerationInput.model_fields)
    run = ProjectGenerationInput(project_id=1, owner="o", name="n", slug="s", template="t", answers={}, **tuning)
    assert (run.max_parallel_tasks, run.tasks_per_batch, run.min_tasks_per_pack) == (3, 40, 2)
    assert run.approval_timeout_seconds == settings.approval_timeout.total_seconds()
    assert run.task_heartbeat_seconds == settings.task_heartbeat_timeout.total_seconds()
