"""Verify and export: merge the task outputs, run trusted hooks and checks, build the
run's git history, and store a reproducible ZIP and a git bundle."""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

import forgeflow
from activities.base import FORGEFLOW_DIR, TemplateActivities, as_json, base_message, permanent, task_commit
from engine import EngineError
from engine.archive import build_zip, file_digest
from engine.gitrepo import History, branch_name, build_history, bundle
from engine.hooks import has_hooks, run_check, run_hook
from engine.render import files_under
from engine.templates import Template
from engine.verify import verify_tree
from workflows.types import EXPORT, VERIFY, ArtifactRef, AssembleInput, ExportResult, VerifyResult


class AssemblyActivities(TemplateActivities):
    def _assemble(self, input: AssembleInput, work: Path) -> Path:
        """Unpack each task's files into ``work/tasks/<id>`` and merge them, in merge
        order, into ``work/project``; two tasks writing one path is a conflict."""
        root = work / "project"
        root.mkdir()
        origin: dict[str, str] = {}
        for task_id in input.plan.merge_order:
            packed = work / f"{task_id}.zip"
            self._artifacts.get_file(input.bundles[task_id], packed)
            task_root = work / "tasks" / task_id
            task_root.mkdir(parents=True)
            with zipfile.ZipFile(packed) as zf:
                for info in zf.infolist():
                    rel = PurePosixPath(info.filename).relative_to("task").as_posix()
                    if ".." in PurePosixPath(rel).parts:
                        raise permanent(f"bundle of {task_id} holds an unsafe path {rel!r}")
                    if rel in origin:
                        raise permanent(
                            f"merge conflict: {rel} is written by both {origin[rel]} and {task_id}", "MergeConflict"
                        )
                    origin[rel] = task_id
                    for target in (task_root / rel, root / rel):
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(zf.read(info))
                        target.chmod((info.external_attr >> 16) & 0o777)
        return root

    def _run_hooks(self, template: Template, context: dict[str, Any], root: Path) -> list[str]:
        """Hooks of trusted templates run on the merged tree; others are skipped, on record."""
        if not has_hooks(template.path):
            return []
        if not template.trusted:
            return [f"skipped: template {template.id} is not trusted"]
        ran: list[str] = []
        for hook in ("pre_gen_project", "post_gen_project"):
            try:
                ran += [f"ran: {name}" for name in run_hook(template.path, hook, root, context)]
            except EngineError as exc:
                raise permanent(str(exc), "HookFailed") from exc
        return ran

    @activity.defn(name=VERIFY)
    def verify(self, input: AssembleInput) -> VerifyResult:
        template = self._template(input.request)
        context = self._context(template, input.request)
        with self._scratch() as tmp:
            root = self._assemble(input, tmp)
            hooks = self._run_hooks(template, context, root)
            activity.heartbeat("verifying")
            expected = [p for t in input.plan.tasks for p in t.expected_outputs]
            result = verify_tree(root, expected)
            files = len(files_under(root))
            checks = []
            if template.trusted:
                for command in template.manifest.checks:
                    activity.heartbeat(f"check: {command}")
                    outcome = run_check(command, root)
                    checks.append(f"{'passed' if outcome.ok else 'failed'}: {command}")
                    if not outcome.ok:
                        result.fail(f"check `{command}` failed: {outcome.output[-500:]}")
        return VerifyResult(
            ok=result.ok,
            files=files,
            files_checked=result.files_checked,
            errors=result.errors,
            checks=checks,
            hooks=hooks,
        )

    @activity.defn(name=EXPORT)
    def export(self, input: AssembleInput) -> ExportResult:
        template = self._template(input.request)
        context = self._context(template, input.request)
        with self._scratch() as tmp:
            root = self._assemble(input, tmp)
            hooks = self._run_hooks(template, context, root)
            history = self._history(input, template, tmp, root if hooks and hooks[0].startswith("ran") else None)
            meta = root / FORGEFLOW_DIR
            meta.mkdir(exist_ok=True)
            for name in input.spec.digests:
                self._artifacts.get_file(f"{input.spec.documents_key}/{name}", meta / name)
            (meta / "answers.json").write_text(as_json(input.request.answers))
            manifest = {
                "forgeflow_version": forgeflow.__version__,
                "template": {"id": template.id, "version": template.version, "digest": template.digest},
                "answers": input.request.answers,
                "spec_version": input.spec.version,
                "tasks": input.plan.merge_order,
                "hooks": hooks,
                "git": {"main": history.main_sha, "branches": history.task_shas},
                "files": {rel: file_digest(root / rel) for rel in files_under(root)},
            }
            (meta / "manifest.json").write_text(as_json(manifest))
            archive = build_zip(root, tmp / "project.zip", root_name=input.plan.root_name)
            prefix = f"{self._run_prefix(input.request)}/{input.plan.root_name}"
            stored = self._artifacts.put_file(f"{prefix}.zip", archive.path)
            repository = self._artifacts.put_file(f"{prefix}.bundle", bundle(tmp / "repo", tmp / "repo.bundle"))
        return ExportResult(
            artifact=ArtifactRef(key=stored.key, sha256=stored.sha256, size=stored.size),
            files=archive.files,
            repository=ArtifactRef(key=repository.key, sha256=repository.sha256, size=repository.size),
            main_sha=history.main_sha,
        )

    def _history(self, input: AssembleInput, template: Template, work: Path, final: Path | None) -> History:
        """The run's git repository, with a proof that it holds the tasks' own commits."""
        by_id = {t.id: t for t in input.plan.tasks}
        commits = [task_commit(by_id[task_id], work / "tasks" / task_id) for task_id in input.plan.merge_order]
        try:
            history = build_history(work / "repo", base_message=base_message(template), tasks=commits, final_tree=final)
        except EngineError as exc:
            raise ApplicationError(str(exc), type="GitError") from exc
        for task_id in input.plan.merge_order:
            task = by_id[task_id]
            expected = input.commits.get(task_id)
            actual = history.task_shas[branch_name(task.sequence, task.slug)]
            if expected and expected != actual:
                raise permanent(f"task {task_id}: commit {actual} is not its recorded {expected}", "CommitMismatch")
        return history
