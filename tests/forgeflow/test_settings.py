"""The worker's tuning settings: read from FORGEFLOW_ variables, refused out of bounds."""

from __future__ import annotations

import os
import subprocess
import sys

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
    [
        ("activity_threads", 0),
        ("activity_threads", 257),
        ("min_tasks_per_pack", 0),
        ("min_tasks_per_pack", 26),
        # Durations a run's input refuses (a create would fail on them) are refused here.
        ("task_heartbeat_timeout", "PT0S"),
        ("approval_timeout", "-P1D"),
        ("update_timeout", "PT0S"),
        ("webhook_grace", "-PT1S"),
    ],
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
    assert run.webhook_grace_seconds == settings.webhook_grace.total_seconds() == 30


def test_a_bad_variable_stops_a_command_naming_it(tmp_path):
    """No traceback: each bad FORGEFLOW_ variable named, with what is wrong, and exit 2."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGEFLOW_")}
    env.update(
        {"FORGEFLOW_WEBHOOK_GRACE": "-PT1S", "FORGEFLOW_ACTIVITY_THREADS": "0", "FORGEFLOW_DATA_DIR": str(tmp_path)}
    )
    for command in ("worker", "api"):
        ran = subprocess.run(
            [sys.executable, "-m", "forgeflow", command], env=env, capture_output=True, text=True, timeout=60
        )
        assert ran.returncode == 2, ran.stderr
        assert "Traceback" not in ran.stderr
        assert "FORGEFLOW_WEBHOOK_GRACE: Input should be greater than or equal to 0 seconds" in ran.stderr
        assert "FORGEFLOW_ACTIVITY_THREADS: Input should be greater than or equal to 1" in ran.stderr
