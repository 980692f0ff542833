"""Verify and export: merge the task outputs, run trusted hooks and checks, build the
run's git history (the merge and the history: activities/histories.py), and store a
reproducible ZIP and a git bundle.

The task bundles are read into memory and merged there, and the git history is made
there too. Files go to disk only where a subprocess needs a directory: the template's
hooks and checks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio import activity

import forgeflow
from activities.base import (
    FORGEFLOW_DIR,
    TemplateActivities,
    as_json,
    keep_alive,
    permanent,
)
from activities.histories import Assembled, HistoryActivities
from activities.later import Deferred
from activities.task_records import START_RECORD_DELAY
from engine import EngineError
from engine.archive import zip_bytes
from engine.context import COPIER_DATA
from engine.copier_render import run_tasks
from engine.hooks import has_hooks, run_check, run_hook
from engine.provenance import provenance
from engine.rules import rules_for
from engine.templates import Template
from engine.tree import FileData, Tree, read_tree, write_tree
from engine.verify import MAX_FINDINGS, Verification, is_builtin, verify_files
from store.export_keys import bundle_key
from workflows.coding_types import MAX_FIX_OUTPUT, VERIFY_MERGED, VerifiedMerge, VerifyMergedInput
from workflows.status_writes import completed_ready_write
from workflows.types import (
    VERIFY_AND_EXPORT,
    ArtifactRef,
    AssembleInput,
    AssemblyResult,
    ExportResult,
    ProjectionInput,
    VerifyFinding,
    VerifyResult,
)
from workflows.update_types import RunCommits

# How long verifying may take before its phase is stored on its own (as a task's start).
VERIFY_RECORD_DELAY = START_RECORD_DELAY


class _DeferredWrite:
    """A write stored on the delayed-call thread after VERIFY_RECORD_DELAY unless
    ``unstored`` comes first, which hands it to the caller to store (once)."""

    def __init__(self, owner: TemplateActivities, write: ProjectionInput | None) -> None:
        self._write = write
        self._deferred: Deferred | None = None
        if write is not None:
            self._deferred = Deferred(VERIFY_RECORD_DELAY, lambda: owner._store(write), what="storing the verify phase")

    def unstored(self) -> list[ProjectionInput]:
        deferred, self._deferred = self._deferred, None
        if deferred is None or self._write is None or deferred.take():
            return []
        return [self._write]


@dataclass(frozen=True)
class _Job:
    """What verify and export both start from, made once when one activity does both."""

    template: Template
    context: dict[str, Any]
    assembled: Assembled


@dataclass(frozen=True)
class _Hooked:
    hooks: list[str]  # what happened, for the record
    files: Tree  # the project after the hooks
    ran: bool


@dataclass(frozen=True)
class _Checked:
    verified: VerifyResult
    hooked: _Hooked
    failed: list[tuple[str, str]]  # the template's checks that failed: (command, output)


class AssemblyActivities(HistoryActivities):
    @staticmethod
    def _needs_dir(template: Template, *, checks: bool) -> bool:
        return template.trusted and (_runs_code(template) or (checks and bool(template.manifest.checks)))

    def _run_hooks(self, template: Template, context: dict[str, Any], files: Tree, root: Path | None) -> _Hooked:
        """Hooks (a Copier template's ``_tasks``) of trusted templates run on the merged
        tree, written out at ``root`` (by the caller, when :meth:`_needs_dir`); others are
        skipped, on record."""
        if template.format == "copier":
            return self._run_tasks(template, context, files, root)
        if not has_hooks(template.path):
            return _Hooked([], files, ran=False)
        if not template.trusted:
            return _Hooked([f"skipped: template {template.id} is not trusted"], files, ran=False)
        if root is None:
            raise ValueError("trusted hooks need the project written out: see _needs_dir")
        ran: list[str] = []
        for hook in ("pre_gen_project", "post_gen_project"):
            try:
                names = run_hook(template.path, hook, root, context, sandbox=self._sandbox, trusted=template.trusted)
                ran += [f"ran: {name}" for name in names]
            except EngineError as exc:
                raise permanent(str(exc), "HookFailed") from exc
        return _Hooked(ran, read_tree(root), ran=True)

    def _hooks(self, job: _Job, merged: Tree, root: Path | None) -> _Hooked:
        if job.assembled.history is not None:
            # Coding agents build on the template's files as rendered; its hooks, written for
            # the template's own output, do not run over the agents' work.
            return _Hooked(["skipped: coding agents built this run on the template's files"], merged, ran=False)
        return self._run_hooks(job.template, job.context, merged, root)

    def _run_tasks(self, template: Template, context: dict[str, Any], files: Tree, root: Path | None) -> _Hooked:
        if not template.has_tasks:
            return _Hooked([], files, ran=False)
        if not template.trusted:
            return _Hooked([f"skipped: template {template.id} is not trusted (its _tasks)"], files, ran=False)
        if root is None:
            raise ValueError("trusted tasks need the project written out: see _needs_dir")
        try:
            ran = run_tasks(template, context[COPIER_DATA], root, sandbox=self._sandbox)
        except EngineError as exc:
            raise permanent(str(exc), "HookFailed") from exc
        return _Hooked(ran, read_tree(root), ran=True)

    @activity.defn(name=VERIFY_AND_EXPORT)
    def verify_and_export(self, input: AssembleInput) -> AssemblyResult:
        """Both on one merge of the task bundles, in one activity: a run pays one round
        trip and one workflow task for them, not two. Nothing is exported unless
        verification passed."""
        # The verify phase goes on record once verifying has taken VERIFY_RECORD_DELAY; a
        # quicker run stores it with the ready write, in one transaction. Either way it is
        # stored before the activity ends.
        verify_write = _DeferredWrite(self, input.record_first)
        try:
            with keep_alive():
                job = self._job(input)
                if input.verified is not None and job.assembled.history is not None:
                    # Coding agents' run: verify_merged checked this same merge already; the
                    # template's hooks never run over the agents' work (see _hooks).
                    verified, hooked = input.verified, self._hooks(job, job.assembled.merged, None)
                else:
                    checked = self._verify(input, job)
                    verified, hooked = checked.verified, checked.hooked
                if not verified.ok:
                    return AssemblyResult(verification=verified)
                # The hooks ran on this same merge already: export takes their tree.
                exported = self._export(input, job, hooked)
                recorded = None
                if input.record_last is not None:
                    recorded = completed_ready_write(input.record_last, verified, exported)
                self._store(*verify_write.unstored(), *([recorded] if recorded else []))
                return AssemblyResult(verification=verified, export=exported, recorded=recorded)
        finally:
            self._store(*verify_write.unstored())

    @activity.defn(name=VERIFY_MERGED)
    def verify_merged(self, input: VerifyMergedInput) -> VerifiedMerge:
        """Coding agents' tasks: their branches merged and verified, the merged history
        stored whether or not it passed, and the first failing check with its output. A
        failure is the result, not an error: the run decides (a fix task, or its end)."""
        with keep_alive():
            job = self._job(input.assemble)
            if job.assembled.history is None:
                raise permanent("verify_merged takes a coding agents' run (coding_base_key)")
            checked = self._verify(input.assemble, job)
            history, data = job.assembled.history
            key = f"{self._run_prefix(input.assemble.request)}/verified/{input.round:03d}.bundle"
            stored = self._artifacts.put_bytes(key, data)
        verified = checked.verified
        check, output = "", ""
        if checked.failed:
            check, output = checked.failed[0]
        elif not verified.ok:  # no check failed: the rules or the expected outputs did
            check, output = "verification", "\n".join(verified.errors)
        return VerifiedMerge(
            verification=verified,
            history=RunCommits(bundle_key=stored.key, head=history.main_sha, base=history.base_sha),
            failed_check=check,
            output=output[-MAX_FIX_OUTPUT:],
        )

    def _job(self, input: AssembleInput) -> _Job:
        template = self._template(input.request)
        return _Job(template, self._context(template, input.request), self._assemble(input))

    def _verify(self, input: AssembleInput, job: _Job) -> _Checked:
        """The verification, the project as the template's hooks left it, and the checks
        that failed with their output."""
        template, merged = job.template, job.assembled.merged
        expected = [p for t in input.plan.tasks for p in t.expected_outputs]
        checks: list[str] = []
        failed: list[tuple[str, str]] = []
        # Only forgeflow's own templates fail on a file their rules cannot parse; for the
        # others that is a warning, and their checks and expected outputs are what can fail.
        strict = is_builtin(template)
        # What the built-in templates' ACCEPTANCE.md promises (it installs, its settings
        # import, its URLs resolve), checked in process: engine.rules.
        rules = rules_for(template)
        if not self._needs_dir(template, checks=True):
            hooked = self._hooks(job, merged, None)
            result = verify_files(hooked.files, expected, strict=strict, project_rules=rules)
            return _Checked(self._verified(result, hooked, checks), hooked, failed)
        with self._scratch() as tmp:
            root = tmp / "project"
            write_tree(merged, root)
            hooked = self._hooks(job, merged, root)
            activity.heartbeat("verifying")
            result = verify_files(hooked.files, expected, strict=strict, project_rules=rules)
            for command in template.manifest.checks:
                activity.heartbeat(f"check: {command}")
                outcome = run_check(command, root, sandbox=self._sandbox, trusted=template.trusted)
                checks.append(f"{'passed' if outcome.ok else 'failed'}: {command}")
                if not outcome.ok:
                    result.fail(f"check `{command}` failed: {outcome.output[-500:]}")
                    failed.append((command, outcome.output))
        return _Checked(self._verified(result, hooked, checks), hooked, failed)

    @staticmethod
    def _verified(result: Verification, hooked: _Hooked, checks: list[str]) -> VerifyResult:
        # The project rules that ran are on record beside the template's commands: a run's
        # `checks` say what its verification held the project to.
        failed = {f.rule for f in result.findings if f.severity == "error"}
        checks = [f"{'failed' if r in failed else 'passed'}: {r} (in process)" for r in result.rules] + checks
        return VerifyResult(
            ok=result.ok,
            files=len(hooked.files),
            files_checked=result.files_checked,
            errors=result.errors[:MAX_FINDINGS],
            checks=checks,
            hooks=hooked.hooks,
            findings=[VerifyFinding.model_validate(f, from_attributes=True) for f in result.listed()],
            findings_total=len(result.findings),
            warnings=result.warnings,
        )

    def _export(self, input: AssembleInput, job: _Job, hooked: _Hooked) -> ExportResult:
        """The ZIP and the git bundle of the tree verify's hooks made on this same merge."""
        template, assembled = job.template, job.assembled
        history, repository_bytes = self._history(input, template, assembled, hooked.files if hooked.ran else None)
        project = dict(hooked.files)
        # The run's record travels in the ZIP, outside the git history.
        for name in input.spec.digests:
            project[f"{FORGEFLOW_DIR}/{name}"] = FileData(self._read(f"{input.spec.documents_key}/{name}"))
        # Where the project came from, in both records: the template (and its source, ref
        # and commit) and the answers, a Copier template's secret ones left out.
        origin, answers = provenance(template, input.request.answers)
        project[f"{FORGEFLOW_DIR}/answers.json"] = FileData(as_json({"template": origin, "answers": answers}).encode())
        manifest = {
            "forgeflow_version": forgeflow.__version__,
            "template": origin,
            "answers": answers,
            "spec_version": input.spec.version,
            "tasks": input.plan.merge_order,
            "hooks": hooked.hooks,
            "git": {"main": history.main_sha, "base": history.base_sha, "branches": history.task_shas},
            "files": {rel: hashlib.sha256(project[rel].data).hexdigest() for rel in sorted(project)},
        }
        project[f"{FORGEFLOW_DIR}/manifest.json"] = FileData(as_json(manifest).encode())
        try:
            archive = zip_bytes(project, root_name=input.plan.root_name)
        except EngineError as exc:
            raise permanent(str(exc)) from exc
        prefix = f"{self._run_prefix(input.request)}/{input.plan.root_name}"
        stored = self._artifacts.put_bytes(f"{prefix}.zip", archive)
        repository = self._artifacts.put_bytes(bundle_key(stored.key), repository_bytes)
        return ExportResult(
            artifact=ArtifactRef(key=stored.key, sha256=stored.sha256, size=stored.size),
            files=len(project),
            repository=ArtifactRef(key=repository.key, sha256=repository.sha256, size=repository.size),
            main_sha=history.main_sha,
            base_sha=history.base_sha,
        )


def _runs_code(template: Template) -> bool:
    return template.has_tasks if template.format == "copier" else has_hooks(template.path)
