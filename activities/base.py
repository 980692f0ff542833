"""What every generation activity shares: the template catalogue, the artifact store and
private scratch space. Each activity rebuilds what it needs from the template and the
answers (deterministic) and exchanges files with the others only through the artifact
store, so any worker host can run any step, and a retried step writes the same bytes
under the same keys."""

from __future__ import annotations

import contextvars
import copy
import json
import logging
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.projection import ProjectionActivities
from engine import EngineError
from engine.context import build_context, validate_answers
from engine.gitrepo import Files, TaskCommit, branch_name
from engine.lru import LRU
from engine.sandbox import SandboxConfig
from engine.sources import NO_SOURCES, SourceUnavailable, TemplateSources
from engine.templates import Template, load_template
from store.artifacts import ArtifactStore
from workflows.types import ProjectionInput, TaskDefinition, TemplateRequest

log = logging.getLogger("forgeflow.worker")
FORGEFLOW_DIR = ".forgeflow"
# Runs whose context (and plan, and file ownership) a worker keeps: enough for every run a
# busy worker has in flight, so their tasks reuse them instead of rebuilding them (32 was
# thrashed by 200 concurrent projects: 16 % of the worker's CPU went to rebuilding contexts).
# About 160 KiB a run for the built-in template, so about 40 MB when full.
RUNS_KEPT = 256


def permanent(message: str, kind: str = "EngineError") -> ApplicationError:
    """A failure no retry can fix: a bad template, bad answers, a scope violation."""
    return ApplicationError(message, type=kind, non_retryable=True)


def base_message(template: Template) -> str:
    return f"Start from template {template.id} {template.version} ({template.digest[:12]})"


def task_commit(task: TaskDefinition, root: Files) -> TaskCommit:
    message = f"Task {task.sequence}: {task.slug}\n\n{task.description}\n"
    return TaskCommit(branch=branch_name(task.sequence, task.slug), message=message, root=root)


@contextmanager
def keep_alive() -> Iterator[None]:
    """Heartbeat from a side thread while the block runs: a long hook, check or assembly
    stays alive, and a step whose completion was lost (the server was down when it
    finished) is retried after the heartbeat timeout, not after its whole time limit."""
    info = activity.info()
    if not info.heartbeat_timeout:
        yield
        return
    done = threading.Event()
    interval = max(info.heartbeat_timeout.total_seconds() / 3, 0.05)

    def beat() -> None:
        while not done.wait(interval):
            try:
                activity.heartbeat()
            except TimeoutError:
                # The worker's event loop took longer than the SDK waits (10 s) to take the
                # heartbeat: a machine under heavy load. The next beat tries again; a thread
                # that died here would let the step time out while it still works.
                log.warning("a heartbeat of %s was not taken in time; beating on", activity.info().activity_type)

    # The copied context is the activity's: heartbeat() needs it.
    thread = threading.Thread(target=contextvars.copy_context().run, args=(beat,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


class Pulse:
    """One activity's heartbeats, sent at most every tenth of its heartbeat timeout (and at
    most a second apart). A thread activity's heartbeat waits for the worker's event loop,
    which a pack of quick tasks would otherwise do twice a task (measured: 44 % of a pack's
    wall time); the SDK sends the server no more than one every 80 % of the timeout anyway,
    so nothing there changes, and a cancellation still arrives within the interval."""

    def __init__(self) -> None:
        timeout = activity.info().heartbeat_timeout
        self._interval = min(timeout.total_seconds() / 10, 1.0) if timeout else 1.0
        self._last = float("-inf")

    def __call__(self, *details: Any) -> None:
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            activity.heartbeat(*details)


def as_json(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class TemplateActivities:
    # One cache for every activity class in the process: the spec, the tasks, verify and
    # export of a run all ask for the same context.
    _contexts: ClassVar[LRU[tuple[str, str, str], dict[str, Any]]] = LRU(RUNS_KEPT)
    # Set by the worker: stores the status writes a run hands over with an activity's input.
    projection: ProjectionActivities | None = None

    def __init__(
        self,
        artifacts: ArtifactStore,
        *,
        template_path: str = "",
        trusted_ids: frozenset[str] = frozenset(),
        work_dir: Path | None = None,
        sandbox: SandboxConfig | None = None,
        sources: TemplateSources = NO_SOURCES,
    ) -> None:
        self._artifacts = artifacts
        self._template_path = template_path
        self._trusted_ids = trusted_ids
        # Registered git sources; a run names one pinned to a commit (engine.sources).
        self._sources = sources
        self._work_dir = work_dir
        # Where template hooks and checks run (the worker's settings; by default bwrap).
        self._sandbox = sandbox or SandboxConfig()

    def _store(self, *writes: ProjectionInput) -> None:
        """Store status writes the run handed over (see workflows.status), in one transaction."""
        if not writes:
            return
        if self.projection is None:
            raise permanent("this worker cannot store status writes (no database)")
        self.projection.store(*writes)

    def _template(self, request: TemplateRequest) -> Template:
        try:
            template = load_template(
                request.template,
                template_path=self._template_path,
                trusted_ids=self._trusted_ids,
                sources=self._sources,
            )
        except SourceUnavailable as exc:
            # The repository is away for now (the network, the server): a later attempt may reach it.
            raise ApplicationError(str(exc), type="SourceUnavailable") from exc
        except EngineError as exc:
            raise permanent(str(exc)) from exc
        if request.template_digest and template.digest != request.template_digest:
            raise permanent(f"template {request.template!r} changed during the run", "TemplateChanged")
        return template

    def _context(self, template: Template, request: TemplateRequest) -> dict[str, Any]:
        """The cookiecutter context, built once per template version and answers: building
        renders every variable with Jinja, and every task of a run asks for the same one."""
        key = (str(template.path), template.digest, json.dumps(request.answers, sort_keys=True, default=str))
        try:
            found = self._contexts.get_or_make(
                key, lambda: build_context(template, validate_answers(template, request.answers))
            )
        except EngineError as exc:
            raise permanent(str(exc), "InvalidAnswer") from exc
        return copy.deepcopy(found)  # callers and templates may not change the shared one

    @contextmanager
    def _scratch(self) -> Iterator[Path]:
        if self._work_dir is not None:
            self._work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self._work_dir, prefix="ff-") as tmp:
            yield Path(tmp)

    @staticmethod
    def _run_prefix(request: TemplateRequest) -> str:
        return f"projects/{request.project_id}/runs/{request.run_number}"
