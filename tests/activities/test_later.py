"""The process's delayed calls: in due order, called off before they run, and a failing
call does not stop the ones after it."""

from __future__ import annotations

import threading
import time

from activities.later import Deferred, Later


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
