"""keep_alive: a step heartbeats while it works, only when a heartbeat timeout is set."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

from temporalio.testing import ActivityEnvironment

from activities.base import keep_alive


def run_for(seconds: float) -> None:
    with keep_alive():
        time.sleep(seconds)


def test_a_long_step_heartbeats_on_its_own():
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_timeout=timedelta(seconds=0.3))
    beats: list[tuple] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    env.run(run_for, 0.5)
    assert len(beats) >= 3  # every 0.1 s over half a second


def test_no_heartbeat_timeout_no_heartbeats():
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_timeout=None)
    beats: list[tuple] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    env.run(run_for, 0.2)
    assert beats == []


def test_a_heartbeat_not_taken_in_time_does_not_stop_the_beating():
    """The SDK gives up on a heartbeat the worker's loop does not take within 10 s (a machine
    under heavy load) with TimeoutError: the next beats still go."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_timeout=timedelta(seconds=0.3))
    beats: list[tuple] = []

    def heartbeat(*details: object) -> None:
        beats.append(details)
        if len(beats) == 1:
            raise TimeoutError

    env.on_heartbeat = heartbeat
    env.run(run_for, 0.5)
    assert len(beats) >= 3
