"""Agent mode, part 2: the activities that let a coding agent build one task of the plan.

``prepare_workspace`` makes the history every task starts from (the template's scaffold as
one commit, or the project's last main). ``run_coding_task`` gives the agent a clean work
tree, started from its dependencies' merged commit, runs it in the sandbox, then takes
what git sees on disk (never what the agent says) and checks it against the task's path
scope before committing it on the task's branch. Every input comes from the artifact
store, so a retried task starts from the same commit on any worker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from activities.base import base_message, permanent
from activities.checkpoints import CheckpointActivities
from activities.later import CLEANER
from activities.task_commits import AgentReport, stored_task, task_branch, task_message
from agents.coding.config import AgentKind, CodingAgentConfig
from agents.coding.runners import run_coding_agent
from agents.coding.types import AgentRun
from agents.coding.worktree import base_bundle, finish_task, start_task
from agents.spend import recorded_spend
from agents.task_prompt import SPEC_DOCUMENTS, task_prompt
from agents.types import Spend
from engine import EngineError
from engine.gitpack import read_bundle
from engine.outputs import template_files
from engine.sandbox import SandboxConfig
from engine.scratch import held_dir
from engine.tree import FileData
from store.db import Database
from store.usage import NewUsage
from workflows.coding_types import (
    PREPARE_WORKSPACE,
    RUN_CODING_TASK,
    CodingTaskInput,
    CodingTaskResult,
    Workspace,
    WorkspaceInput,
)

# Attempts an agent gets at one task before the task fails: its own errors (a crash, a
# non-zero exit, a scope it broke) may go away in a clean work tree; beyond that they won't.
AGENT_ATTEMPTS = 3
WORK_TREE_PREFIX = "ff-task-"  # <work_dir>/ff-task-*: one task's git directory and work tree


class CodingActivities(CheckpointActivities):
    def __init__(
        self,
        db: Database,
        agents: dict[AgentKind, CodingAgentConfig],
        *args: Any,
        agent_sandbox: SandboxConfig,
        max_file_bytes: int,
        max_task_bytes: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._db = db
        self._agents = agents  # by kind: what this worker can run
        self._agent_sandbox = agent_sandbox
        self._max_file_bytes = max_file_bytes
        self._max_task_bytes = max_task_bytes

    @activity.defn(name=PREPARE_WORKSPACE)
    def prepare_workspace(self, input: WorkspaceInput) -> Workspace:
        if input.base is not None:  # a run on top of the project: its last main
            try:
                refs, _objects = read_bundle(self._read(input.base.bundle_key))
            except FileNotFoundError as exc:
                raise permanent(f"the project's last history ({input.base.bundle_key}) is not stored") from exc
            except EngineError as exc:
                raise permanent(f"the project's last history cannot be read: {exc}", "GitError") from exc
            return Workspace(base_key=input.base.bundle_key, base_commit=dict(refs)["refs/heads/main"].hex())
        # A first run: the template's whole scaffold, rendered as its tasks would render it.
        template = self._template(input.request)
        context = self._context(template, input.request)
        try:
            owned = self._ownership(template, input.request, context)
            files: dict[str, FileData] = {}
            for task in self._plan(template, input.request, context).tasks:
                files.update(template_files(template, context, owned.files_of(task.slug)))
            commit, data = base_bundle(files=files, message=base_message(template))
        except EngineError as exc:
            raise permanent(str(exc), type(exc).__name__) from exc
        stored = self._artifacts.put_bytes(f"{self._run_prefix(input.request)}/base.bundle", data)
        return Workspace(base_key=stored.key, base_commit=commit)

    @activity.defn(name=RUN_CODING_TASK)
    def run_coding_task(self, input: CodingTaskInput) -> CodingTaskResult:
        attempt = activity.info().attempt
        start = None if self.recorder is None else self.recorder.begin(input.request, input.task, attempt)
        try:
            done = self._build(input, attempt)
        except BaseException:
            if self.recorder is not None and start is not None:
                self.recorder.failed_attempt(start)
            raise
        if self.recorder is not None and start is not None:
            self.recorder.succeeded(start, done.result)
        return done

    def _build(self, input: CodingTaskInput, attempt: int) -> CodingTaskResult:
        task = input.task
        branch = task_branch(task)
        activity.heartbeat("preparing the work tree")
        with self._work_tree_dir() as scratch:
            try:
                tree = start_task(
                    scratch=scratch,
                    base=self._read(input.workspace.base_key),
                    dependencies=[(d.branch, self._read(d.bundle_key)) for d in input.dependencies],
                    branch=branch,
                )
            except EngineError as exc:  # a conflict between dependencies: the plan's, no retry helps
                raise permanent(f"task {task.slug}: {exc}", type(exc).__name__) from exc
            prompt = task_prompt(task=task, total=input.total_tasks, documents=self._documents(input), fix=input.fix)
            config = self._config(input)
            run = run_coding_agent(
                config=config, prompt=prompt, workdir=tree.work, sandbox=self._agent_sandbox, on_tick=_tick
            )
            # Spent is spent: the usage goes on record whether or not the task's result is kept.
            spent = self._record_usage(input, config, run, attempt)
            if not run.ok:
                message = f"task {task.slug}: the {config.kind} agent failed: {run.error}"
                if attempt >= AGENT_ATTEMPTS:
                    raise permanent(message, "AgentFailed")
                raise ApplicationError(message, type="AgentFailed")
            activity.heartbeat("committing")
            try:
                committed = finish_task(
                    tree=tree,
                    message=task_message(task),
                    path_scope=task.path_scope,
                    max_file_bytes=self._max_file_bytes,
                    max_total_bytes=self._max_task_bytes,
                )
            except EngineError as exc:  # outside its scope, a symlink, a huge file: named
                raise permanent(f"task {task.slug}: {exc}", type(exc).__name__) from exc
        report = AgentReport(
            summary=run.summary,
            risks=tuple(run.risks),
            input_tokens=run.input_tokens,
            output_tokens=run.output_tokens,
            cost_usd=run.cost_usd,
            spent=spent,
        )
        return stored_task(
            artifacts=self._artifacts,
            run_prefix=self._run_prefix(input.request),
            task=task,
            committed=committed,
            report=report,
        )

    @contextmanager
    def _work_tree_dir(self) -> Iterator[Path]:
        """A task's scratch directory, deleted after the task on a thread of its own: a git
        directory and a work tree take a tenth of a second to delete (measured), which no
        task needs to wait for. Held while the task runs (engine.scratch), so that what a
        killed worker left is swept away (forgeflow.worker) and a live task's never is."""
        if self._work_dir is not None:
            self._work_dir.mkdir(parents=True, exist_ok=True)
        with held_dir(WORK_TREE_PREFIX, self._work_dir, remove=CLEANER.remove) as path:
            yield path

    def _config(self, input: CodingTaskInput) -> CodingAgentConfig:
        try:
            agent = self._agents[AgentKind(input.coding_agent)]
        except (KeyError, ValueError):
            # Another worker of the pool may have it: a retry can land there.
            raise ApplicationError(
                f"this worker runs no {input.coding_agent!r} coding agent (FORGEFLOW_CODING_AGENT)",
                type="AgentUnavailable",
            ) from None
        cap = _tighter(input.max_cost_usd_per_task, agent.max_cost_usd_per_task)
        return agent.model_copy(update={"model": input.model or agent.model, "max_cost_usd_per_task": cap})

    def _documents(self, input: CodingTaskInput) -> dict[str, str]:
        documents: dict[str, str] = {}
        for name in SPEC_DOCUMENTS:
            if name in input.spec.digests:
                documents[name] = self._read(f"{input.spec.documents_key}/{name}").decode("utf-8", "replace")
        return documents

    def _record_usage(
        self, input: CodingTaskInput, config: CodingAgentConfig, run: AgentRun, attempt: int
    ) -> Spend | None:
        """Record the run's usage; the project's spend then, for the next task's budget check."""
        if not (run.input_tokens or run.output_tokens or run.cost_usd):
            return None  # an agent that reports nothing has nothing to record
        request = input.request
        row = NewUsage(
            key=f"task:{request.run_number}:{input.task.id}:{attempt}",
            project_id=request.project_id,
            run_number=request.run_number,
            phase="task",
            task_id=input.task.id,
            number=attempt,
            model=config.model or config.kind.value,
            input_tokens=run.input_tokens,
            output_tokens=run.output_tokens,
            cost_usd=run.cost_usd,
        )

        return recorded_spend(self._db, row)


def _tick() -> None:
    """While the agent works: a heartbeat, and where the run was cancelled, the end of it
    (the runner kills the agent's whole sandbox)."""
    activity.heartbeat("the agent is working")
    if activity.is_cancelled():
        raise CancelledError("the run was cancelled")


def _tighter(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)
