"""The history a run exports, in memory: the tasks' outputs merged (template tasks: their
ZIP bundles, a path two tasks write a conflict; coding agents' tasks: their git branches
merged with git), then the run's git repository as a bundle, on top of the project's last
history for an update or a run on demand."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

from activities.base import TemplateActivities, base_message, permanent, task_commit
from agents.coding.worktree import merge_tasks
from engine import EngineError
from engine.gitpack import read_bundle
from engine.gitrepo import History, PriorHistory, branch_name, history_bundle
from engine.templates import Template
from engine.tree import FileData, Tree
from workflows.types import AssembleInput


@dataclass(frozen=True)
class Assembled:
    tasks: dict[str, dict[str, FileData]]  # task id -> the files of its bundle
    merged: dict[str, FileData]
    history: tuple[History, bytes] | None = None  # made by git as it merged (coding agents' tasks)


class HistoryActivities(TemplateActivities):
    def _read(self, key: str) -> bytes:
        with self._artifacts.open(key) as stored:
            return stored.read()

    def _assemble(self, input: AssembleInput) -> Assembled:
        """Read each task's bundle and merge them in merge order; two tasks writing one path
        is a conflict."""
        if input.coding_base_key is not None:
            return self._merged_branches(input, input.coding_base_key)
        tasks: dict[str, dict[str, FileData]] = {}
        merged: dict[str, FileData] = {}
        origin: dict[str, str] = {}
        for task_id in input.plan.merge_order:
            files: dict[str, FileData] = {}
            with zipfile.ZipFile(io.BytesIO(self._read(input.bundles[task_id]))) as zf:
                for info in zf.infolist():
                    rel = PurePosixPath(info.filename).relative_to("task").as_posix()
                    if ".." in PurePosixPath(rel).parts:
                        raise permanent(f"bundle of {task_id} holds an unsafe path {rel!r}")
                    if rel in origin:
                        raise permanent(
                            f"merge conflict: {rel} is written by both {origin[rel]} and {task_id}", "MergeConflict"
                        )
                    origin[rel] = task_id
                    files[rel] = FileData(zf.read(info), (info.external_attr >> 16) & 0o777)
            tasks[task_id] = files
            merged.update(files)
        return Assembled(tasks=tasks, merged=merged)

    def _merged_branches(self, input: AssembleInput, base_key: str) -> Assembled:
        """Coding agents' tasks: each task's branch merged into the base history's main with
        git, in merge order; a conflict names its files (disjoint scopes make none)."""
        by_id = {t.id: t for t in input.plan.tasks}
        branches = [
            (branch_name(by_id[t].sequence, by_id[t].slug), self._read(input.bundles[t]))
            for t in input.plan.merge_order
        ]
        with self._scratch() as scratch:
            try:
                merged = merge_tasks(scratch=scratch, base=self._read(base_key), tasks=branches)
            except EngineError as exc:
                raise permanent(str(exc), type(exc).__name__) from exc
        base_sha = None
        if input.base is not None:  # a run on top of the project: the main it started from
            base_sha = dict(read_bundle(self._read(base_key))[0])["refs/heads/main"].hex()
        history = History(main_sha=merged.main, task_shas=merged.branches, base_sha=base_sha)
        return Assembled(tasks={}, merged=dict(merged.files), history=(history, merged.bundle))

    def _history(
        self, input: AssembleInput, template: Template, assembled: Assembled, final: Tree | None
    ) -> tuple[History, bytes]:
        """The run's git repository, as a bundle, with a proof that it holds the tasks' own
        commits."""
        if assembled.history is not None:
            return assembled.history
        by_id = {t.id: t for t in input.plan.tasks}
        commits = [task_commit(by_id[task_id], assembled.tasks[task_id]) for task_id in input.plan.merge_order]
        try:
            history, data = history_bundle(
                base_message=base_message(template), tasks=commits, final_tree=final, on_top_of=self._prior(input)
            )
        except EngineError as exc:
            # The same tasks give the same tree and the same error: no retry can help.
            raise permanent(str(exc), "GitError") from exc
        for task_id in input.plan.merge_order:
            task = by_id[task_id]
            expected = input.commits.get(task_id)
            actual = history.task_shas[branch_name(task.sequence, task.slug)]
            if expected and expected != actual:
                raise permanent(f"task {task_id}: commit {actual} is not its recorded {expected}", "CommitMismatch")
        return history, data

    def _prior(self, input: AssembleInput) -> PriorHistory | None:
        """An update's starting point: the history of the project's last ready run."""
        if input.base is None:
            return None
        try:
            bundle = self._read(input.base.bundle_key)
        except FileNotFoundError as exc:  # deleted from the store: no retry brings it back
            raise permanent(f"the project's last history ({input.base.bundle_key}) is not stored", "GitError") from exc
        return PriorHistory(bundle=bundle, message=input.base.message)
