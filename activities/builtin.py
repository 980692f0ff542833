"""The built-in coding agent's activities (its workflow: workflows/builtin_task.py).

``start_builtin_task`` works out where a task starts (the workspace's base with its
dependencies' branches merged, agents.coding.worktree.start_task), stores it as a bundle
and returns a reference. The file tools read that commit's tree, from the stored bundle,
with the workflow's overlay of the model's changes on top; a write stores the content
content-addressed (a retry stores the same bytes under the same key). Every path is checked
here: reads anywhere in the project, writes and deletes only within the task's scope, no
``..``, absolute paths or ``.git``. A refusal is an answer the model reads and can correct.
``finish_builtin_task`` makes the start commit plus the overlay a work tree and commits it
with the checks every coding agent's work goes through (worktree.finish_task)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from temporalio import activity

from activities.base import TemplateActivities, permanent
from activities.task_commits import AgentReport, stored_task, task_branch, task_message
from activities.task_records import PendingStart, TaskRecorder
from agents.budget import budget_exceeded
from agents.coding import gitcli
from agents.coding.builtin_paths import PathRefused, checked_path, in_scope, no_clash
from agents.coding.builtin_types import (
    DELETE_BUILTIN_FILE,
    FINISH_BUILTIN_TASK,
    LIST_BUILTIN_FILES,
    MAX_LISTED,
    MAX_READ_CHARS,
    READ_BUILTIN_FILE,
    RECORD_BUILTIN_REQUEST,
    START_BUILTIN_TASK,
    WRITE_BUILTIN_FILE,
    BuiltinStart,
    FileInput,
    FinishInput,
    ListInput,
    RecordBuiltinInput,
    RecordedBuiltin,
    ToolAnswer,
    WriteInput,
)
from agents.coding.gitcli import Repo
from agents.coding.worktree import finish_task, start_task
from agents.provider import LlmConfig
from agents.spend import priced_usage, recorded_spend
from agents.task_prompt import SPEC_DOCUMENTS, task_prompt
from agents.types import AgentBudget
from engine import EngineError
from engine.gitpack import read_bundle
from engine.lru import LRU
from engine.tree import Tree
from engine.treediff import tree_of_commit
from store.db import Database
from store.models import Project
from workflows.coding_types import CodingTaskInput, CodingTaskResult

TREES_KEPT = 16  # start commits' trees a worker keeps: the tasks running on it


class BuiltinActivities(TemplateActivities):
    _trees: LRU[str, Tree] = LRU(TREES_KEPT)

    def __init__(
        self,
        db: Database,
        config: LlmConfig,
        *args: Any,
        max_file_bytes: int,
        max_task_bytes: int,
        max_cost_usd_per_task: float | None = None,
        recorder: TaskRecorder | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._db = db
        self._recorder = recorder  # the task's row and events: running at its start, its result at its end
        self._config = config
        self._max_file_bytes = max_file_bytes
        self._max_task_bytes = max_task_bytes
        self._max_cost_usd_per_task = max_cost_usd_per_task

    def _read(self, key: str) -> bytes:
        with self._artifacts.open(key) as stored:
            return stored.read()

    def _tree(self, start: BuiltinStart) -> Tree:
        def load() -> Tree:
            _refs, objects = read_bundle(self._read(start.bundle_key))
            return tree_of_commit(objects=objects, commit=bytes.fromhex(start.commit))

        try:
            return self._trees.get_or_make(f"{start.bundle_key}@{start.commit}", load)
        except FileNotFoundError as exc:
            raise permanent(f"the task's start ({start.bundle_key}) is not stored") from exc
        except EngineError as exc:
            raise permanent(f"the task's start cannot be read: {exc}", "GitError") from exc

    @activity.defn(name=START_BUILTIN_TASK)
    def start_builtin_task(self, input: CodingTaskInput) -> BuiltinStart:
        task, prefix = input.task, self._run_prefix(input.request)
        key, commit = input.workspace.base_key, input.workspace.base_commit
        if input.dependencies:  # their branches merged: a commit of its own, stored
            with self._scratch() as scratch:
                try:
                    tree = start_task(
                        scratch=scratch,
                        base=self._read(key),
                        dependencies=[(d.branch, self._read(d.bundle_key)) for d in input.dependencies],
                        branch=task_branch(task),
                    )
                    repo = Repo(git_dir=tree.git_dir, work=tree.work)
                    data, _objects = gitcli.export_bundle(
                        repo, refs=[("refs/heads/main", tree.start), ("HEAD", tree.start)]
                    )
                except EngineError as exc:  # dependencies that conflict: the plan's, no retry helps
                    raise permanent(f"task {task.slug}: {exc}", type(exc).__name__) from exc
            key = self._artifacts.put_bytes(f"{prefix}/tasks/{task.sequence:03d}-{task.slug}.start.bundle", data).key
            commit = tree.start
        documents = {
            name: self._read(f"{input.spec.documents_key}/{name}").decode("utf-8", "replace")
            for name in SPEC_DOCUMENTS
            if name in input.spec.digests
        }
        start = BuiltinStart(
            bundle_key=key,
            commit=commit,
            files=0,
            blob_prefix=f"{prefix}/builtin/blobs",
            prompt=task_prompt(task=task, total=input.total_tasks, documents=documents, fix=input.fix),
            worker_cap_usd=self._max_cost_usd_per_task,
        )
        start = start.model_copy(update={"files": len(self._tree(start))})
        if self._recorder is not None:
            self._recorder.started(PendingStart(input.request, task, 1))
        return start

    @activity.defn(name=LIST_BUILTIN_FILES)
    def list_builtin_files(self, input: ListInput) -> ToolAnswer:
        try:
            directory = checked_path(input.directory) + "/" if input.directory.strip(" ./") else ""
        except PathRefused as exc:
            return ToolAnswer(error=str(exc))
        paths = {p for p in self._tree(input.start) if p.startswith(directory)}
        for path, key in input.overlay.items():
            if path.startswith(directory):
                (paths.add if key is not None else paths.discard)(path)
        listed = sorted(paths)
        more = len(listed) - MAX_LISTED
        text = "\n".join(listed[:MAX_LISTED]) + (f"\n... and {more} more" if more > 0 else "")
        return ToolAnswer(text=text or f"no files under {directory or 'the project root'}", path=directory)

    @activity.defn(name=READ_BUILTIN_FILE)
    def read_builtin_file(self, input: FileInput) -> ToolAnswer:
        try:
            path = checked_path(input.path)
        except PathRefused as exc:
            return ToolAnswer(error=str(exc))
        if path in input.overlay:
            key = input.overlay[path]
            data = None if key is None else self._read(key)
        else:
            found = self._tree(input.start).get(path)
            data = None if found is None else found.data
        if data is None:
            return ToolAnswer(error=f"{path!r} does not exist (list_files shows what does)", path=path)
        if b"\0" in data[:8000]:
            return ToolAnswer(text=f"{path} is a binary file of {len(data)} bytes", path=path)
        text = data.decode("utf-8", "replace")
        if len(text) > MAX_READ_CHARS:
            text = text[:MAX_READ_CHARS] + f"\n... (cut: the file has {len(text)} characters)"
        return ToolAnswer(text=text, path=path)

    @activity.defn(name=WRITE_BUILTIN_FILE)
    def write_builtin_file(self, input: WriteInput) -> ToolAnswer:
        data = input.content.encode("utf-8")
        try:
            path = checked_path(input.path)
            in_scope(path, input.path_scope)
            if len(data) > self._max_file_bytes:
                raise PathRefused(f"{path!r} would be {len(data)} bytes, over the {self._max_file_bytes} a file may be")
            if input.overlay_bytes + len(data) > self._max_task_bytes:
                raise PathRefused(f"the task's files would be over {self._max_task_bytes} bytes")
            no_clash(path, self._tree(input.start), input.overlay)
        except PathRefused as exc:
            return ToolAnswer(error=str(exc))
        digest = hashlib.sha256(data).hexdigest()
        stored = self._artifacts.put_bytes(f"{input.start.blob_prefix}/{digest}", data)
        return ToolAnswer(text=f"wrote {path} ({len(data)} bytes)", path=path, key=stored.key, size=len(data))

    @activity.defn(name=DELETE_BUILTIN_FILE)
    def delete_builtin_file(self, input: FileInput) -> ToolAnswer:
        try:
            path = checked_path(input.path)
            in_scope(path, input.path_scope)
        except PathRefused as exc:
            return ToolAnswer(error=str(exc))
        existed = path in self._tree(input.start)
        if not (input.overlay[path] is not None if path in input.overlay else existed):
            return ToolAnswer(error=f"{path!r} does not exist", path=path)
        return ToolAnswer(text=f"deleted {path}", path=path, existed=existed)

    @activity.defn(name=RECORD_BUILTIN_REQUEST)
    def record_builtin_request(self, input: RecordBuiltinInput) -> RecordedBuiltin:
        """One model request's usage on record (keyed by the request: stored once), priced,
        and the project's spend and budget as stored now."""
        row = priced_usage(self._config, input, phase="task")
        spent = recorded_spend(self._db, row)
        with self._db.session() as session:
            project = session.get(Project, input.project_id)
            stored = (project.agent or {}).get("budget") if project is not None else None
        exceeded = budget_exceeded(AgentBudget.model_validate(stored or {}), spent)
        return RecordedBuiltin(cost_usd=row.cost_usd, spent=spent, stop=None if exceeded is None else exceeded.message)

    @activity.defn(name=FINISH_BUILTIN_TASK)
    def finish_builtin_task(self, input: FinishInput) -> CodingTaskResult:
        coding, task = input.task, input.task.task
        branch = task_branch(task)
        with self._scratch() as scratch:
            try:
                base = self._read(input.start.bundle_key)
                tree = start_task(scratch=scratch, base=base, dependencies=[], branch=branch)
                for path, key in sorted(input.overlay.items()):
                    target = tree.work / checked_path(path)
                    if key is None:
                        target.unlink(missing_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(self._read(key))
                committed = finish_task(
                    tree=tree,
                    message=task_message(task),
                    path_scope=task.path_scope,
                    max_file_bytes=self._max_file_bytes,
                    max_total_bytes=self._max_task_bytes,
                )
            except (EngineError, PathRefused, OSError) as exc:
                raise permanent(f"task {task.slug}: {exc}", type(exc).__name__) from exc
        report = AgentReport(
            summary=input.summary,
            risks=tuple(input.risks),
            input_tokens=input.input_tokens,
            output_tokens=input.output_tokens,
            cost_usd=input.cost_usd,
            spent=input.spent,
        )
        done = stored_task(
            artifacts=self._artifacts,
            run_prefix=self._run_prefix(coding.request),
            task=task,
            committed=committed,
            report=report,
        )
        if self._recorder is not None:  # its start on record already (a repeat of its event is kept once)
            self._recorder.succeeded(PendingStart(coding.request, task, 1), done.result)
        return done

    def activities(self) -> Iterator[Any]:
        yield from (
            self.start_builtin_task,
            self.list_builtin_files,
            self.read_builtin_file,
            self.write_builtin_file,
            self.delete_builtin_file,
            self.record_builtin_request,
            self.finish_builtin_task,
        )
