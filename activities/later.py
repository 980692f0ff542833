"""Delayed calls for the whole worker process, on one thread; and directories deleted on
another (``CLEANER``), after the tasks that used them, which also sweeps away, at the
worker's start and every ten minutes, what tasks of killed workers left (engine.scratch).

Every task arms a call that records its start if it is still running a quarter of a second
later, and almost every task calls it off by finishing first. A ``threading.Timer`` per task
started a thread per task, which cost more than most tasks (measured: a fifth of a task
pack's wall time, waiting for new threads to start)."""

from __future__ import annotations

import contextvars
import heapq
import itertools
import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from engine.scratch import sweep

log = logging.getLogger("forgeflow.activities")


class Call:
    def __init__(self, due: float, fn: Callable[[], object]) -> None:
        self.due, self.fn = due, fn
        self.cancelled = False

    def cancel(self) -> None:
        # A call already running is not stopped; its owner's lock orders the two.
        self.cancelled = True


class Later:
    def __init__(self) -> None:
        self._queue: list[tuple[float, int, Call]] = []
        self._order = itertools.count()  # equal due times keep their order
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def call(self, delay: float, fn: Callable[[], object]) -> Call:
        call = Call(time.monotonic() + delay, fn)
        with self._changed:
            heapq.heappush(self._queue, (call.due, next(self._order), call))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="forgeflow-later", daemon=True)
                self._thread.start()
            self._changed.notify()
        return call

    def _run(self) -> None:
        while True:
            with self._changed:
                # Called-off calls leave the queue as they reach its head.
                while self._queue and self._queue[0][2].cancelled:
                    heapq.heappop(self._queue)
                if not self._queue:
                    self._changed.wait()
                    continue
                wait = self._queue[0][0] - time.monotonic()
                if wait > 0:
                    self._changed.wait(wait)
                    continue
                call = heapq.heappop(self._queue)[2]
            try:
                call.fn()
            except Exception:
                log.exception("a delayed call failed")


LATER = Later()


class Deferred:
    """``fn``, called on the delayed-call thread ``delay`` seconds from now unless ``take``
    comes first. ``take`` says whether it was called; if not, the owner does the work
    itself, with its own (one transaction for two writes, say). It runs in the creator's
    context, so an activity's heartbeats still work from the delayed-call thread."""

    def __init__(self, delay: float, fn: Callable[[], object], what: str = "a deferred call") -> None:
        self._fn, self._what = fn, what
        self._lock = threading.Lock()
        self._taken = self._done = False
        context = contextvars.copy_context()
        self._call = LATER.call(delay, lambda: context.run(self._fire))

    def _fire(self) -> None:
        with self._lock:
            if self._taken:
                return
            try:
                self._fn()
                self._done = True
            except Exception:  # the owner does it at take
                log.exception("%s failed", self._what)

    def take(self) -> bool:
        """Call it off; whether it was called (and succeeded). Taking twice is harmless."""
        self._call.cancel()
        with self._lock:
            self._taken = True
            return self._done


SWEEP_SECONDS = 600.0


class Cleaner:
    """Deletes directories one after another on one daemon thread (started on first use),
    and sweeps the watched places: at once when one is added, then every ``every`` seconds."""

    def __init__(self, every: float = SWEEP_SECONDS) -> None:
        self._every = every
        self._queue: queue.SimpleQueue[Path | None] = queue.SimpleQueue()  # None: sweep now
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._watched: list[tuple[Path, str]] = []

    def remove(self, path: Path) -> None:
        self._start()
        self._queue.put(path)

    def watch(self, parent: Path, prefix: str) -> None:
        """Sweep ``parent`` of the ``prefix*`` directories no live process holds."""
        with self._lock:
            self._watched.append((parent, prefix))
        self._start()
        self._queue.put(None)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="forgeflow-cleaner", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        due = time.monotonic() + self._every
        while True:
            try:
                path = self._queue.get(timeout=max(0.0, due - time.monotonic()))
            except queue.Empty:
                path = None
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)
                if time.monotonic() < due:  # a busy queue still lets the sweep come when due
                    continue
            with self._lock:
                watched = list(self._watched)
            for parent, prefix in watched:
                try:
                    sweep(parent, prefix)
                except Exception:
                    log.exception("sweeping %s failed", parent)
            due = time.monotonic() + self._every


# Work trees go here, to be deleted off the tasks' critical path (activities.coding); and
# the worker has it sweep what killed workers left (forgeflow.worker).
CLEANER = Cleaner()
