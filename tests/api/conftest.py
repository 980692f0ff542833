"""Fixtures of the API tests."""

from __future__ import annotations

import pytest

import api.ratelimit

T0 = 1_900_000_040.0  # 20 s into a minute


@pytest.fixture
def clock(monkeypatch):
    """A still clock for the limiter, so that no test straddles a window boundary."""
    now = [T0]
    monkeypatch.setattr(api.ratelimit, "clock", lambda: now[0])
    return now
