"""The process's delayed calls: in due order, called off before they run, and a failing
call does not stop the ones after it; and the cleaner's deletions and sweeps."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from activities.later import Cleaner, Deferred, Later
from engine.scratch import LOCK, held_dir


def test_calls_run_in_due_order_and_called_off_ones_never_run():
    later = Later()
    ran: list[str] = []
    done = threading.Event()
    later.call(0.06, lambda: (ran.append("last"), done.set()))
    later.call(0.02, lambda: ran.append("first"))
    later.call(0.04, lambda: ran.append("called off")).cancel()
    later.call(0.03, lambda: 1 / 0)  # logged; the thread goes on
    later.call(0.05, lambda: ran.append("after the failure"))
    assert done.wait(5)
    assert ran == ["first", "after the failure", "last"]


def test_one_thread_serves_every_call():
    later = Later()
    threads: list[int] = []
    done = threading.Event()
    for n in range(20):
        later.call(0.001 * n, lambda: threads.append(threading.get_ident()))
    later.call(0.05, done.set)
    assert done.wait(5)
    assert len(threads) == 20 and len(set(threads)) == 1 and threads[0] != threading.get_ident()


def test_a_deferred_call_taken_in_time_never_runs_and_one_taken_late_ran_once():
    calls = []
    early = Deferred(0.2, lambda: calls.append("early"))
    assert early.take() is False
    late = Deferred(0.01, lambda: calls.append("late"))
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.005)
    assert late.take() is True
    time.sleep(0.3)  # past the early one's due time
    assert calls == ["late"]


def test_a_deferred_call_that_failed_is_left_to_its_owner():
    def fail():
        raise RuntimeError("database away")

    failing = Deferred(0.01, fail)
    time.sleep(0.1)
    assert failing.take() is False


def stale(parent: Path, name: str) -> Path:
    """A held directory whose holder is gone: its lock file, held by nobody."""
    path = parent / name
    path.mkdir()
    (path / LOCK).touch()
    return path


def wait_gone(path: Path, seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return not path.exists()


def test_the_cleaner_sweeps_a_watched_place_at_once_and_then_periodically(tmp_path):
    cleaner = Cleaner(every=0.2)
    first = stale(tmp_path, "ff-task-first")
    with held_dir("ff-task-", tmp_path) as live:
        cleaner.watch(tmp_path, "ff-task-")
        assert wait_gone(first)
        later = stale(tmp_path, "ff-task-later")
        assert wait_gone(later)  # the next sweep, without another watch
        assert live.is_dir()
    done = tmp_path / "done"
    done.mkdir()
    cleaner.remove(done)
    assert wait_gone(done)
