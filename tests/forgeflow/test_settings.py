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
    assert (defaults.activity_threads, defaults.min_tasks_per_pack) == (16, 4)


@pytest.mark.parametrize(
    ("name", "value"),
    [("activity_threads", 0), ("activity_threads", 257), ("min_tasks_per_pack", 0), ("min_tasks_per_pack", 26)],
)
def test_tuning_settings_out_of_bounds_are_refused(name, value):
    with pytest.raises(ValidationError) as refused:
        Settings(**{name: value})
    assert refused.value.errors()[0]["loc"] == (name,)
