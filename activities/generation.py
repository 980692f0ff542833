"""The generation activities: each rebuilds what it needs from the template and the
answers (deterministic), works in a private temporary directory and exchanges files
with other activities only through the artifact store, so any worker host can run
any step, and a retried step writes the same bytes under the same keys."""

from __future__ import annotations

import json
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from temporalio import activity
from temporalio.exceptions import ApplicationError

import forgeflow
from engine import EngineError
from engine.archive import build_zip, file_digest
from engine.context import build_context, validate_answers
from engine.gitrepo import History, TaskCommit, branch_name, build_history, bundle, commit_task
from engine.plan import decompose, matches, modules_for, task_selector
from engine.questions import questions_for
from engine.render import files_under, render
from engine.spec import render_spec
from engine.templates import Template, load_template
from engine.verify import verify_tree
from store.artifacts import ArtifactStore
from workflows.types import (
    CLARIFY,
    DECOMPOSE,
    EXPORT,
    RUN_TASK,
    VERIFY,
    WRITE_SPEC,
    ArtifactRef,
    AssembleInput,
    ClarifyResult,
    ExportResult,
    PlanResult,
    QuestionModel,
    SpecInput,
    SpecResult,
    TaskDefinition,
    TaskInput,
    TaskResult,
    TemplateRequest,
    VerifyResult,
)

FORGEFLOW_DIR = ".forgeflow"


def permanent(message: str, kind: str = "EngineError") -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


class GenerationActivities:
    def __init__(self, artifacts: ArtifactStore, *, template_path: str = "", work_dir: Path | None = None) -> None:
        self._artifacts = artifacts
        self._template_path = template_path
        self._work_dir = work_dir

    # --- helpers ---------------------------------------------------------------------

    def _template(self, request: TemplateRequest) -> Template:
        try:
            template = load_template(request.template, template_path=self._template_path)
        except EngineError as exc:
            raise permanent(str(exc)) from exc
        if request.template_digest and template.digest != request.template_digest:
            raise permanent(f"template {request.template!r} changed during the run", "TemplateChanged")
        return template

    def _context(self, template: Template, request: TemplateRequest) -> dict:
        try:
            return build_context(template, validate_answers(template, request.answers))
        except EngineError as exc:
            raise permanent(str(exc), "InvalidAnswer") from exc

    @contextmanager
    def _scratch(self) -> Iterator[Path]:
        if self._work_dir is not None:
            self._work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self._work_dir, prefix="ff-") as tmp:
            yield Path(tmp)

    @staticmethod
    def _run_prefix(request: TemplateRequest) -> str:
        return f"projects/{request.project_id}/runs/{request.run_number}"

    # --- activities ------------------------------------------------------------------

    @activity.defn(name=CLARIFY)
    def clarify(self, request: TemplateRequest) -> ClarifyResult:
        template = self._template(request)
        try:
            answers = validate_answers(template, request.answers)
            questions = questions_for(template, answers)
        except EngineError as exc:
            raise permanent(str(exc), "InvalidAnswer") from exc
        return ClarifyResult(
            template_digest=template.digest,
            questions=[QuestionModel(**q.__dict__) for q in questions],
        )

    @activity.defn(name=WRITE_SPEC)
    def write_spec(self, input: SpecInput) -> SpecResult:
        template = self._template(input.request)
        context = self._context(template, input.request)
        try:
            plan = decompose(template, context)
        except EngineError as exc:
            raise permanent(str(exc), "InvalidPlan") from exc
        documents = render_spec(template, context, plan, version=input.version, feedback=input.feedback)
        prefix = f"{self._run_prefix(input.request)}/spec/v{input.version}"
        digests = {}
        for name, text in documents.items():
            digests[name] = self._artifacts.put_bytes(f"{prefix}/{name}", text.encode()).sha256
        return SpecResult(version=input.version, documents_key=prefix, digests=digests)

    @activity.defn(name=DECOMPOSE)
    def decompose(self, request: TemplateRequest) -> PlanResult:
        template = self._template(request)
        try:
            plan = decompose(template, self._context(template, request))
        except EngineError as exc:
            raise permanent(str(exc), "InvalidPlan") from exc
        return PlanResult(
            root_name=plan.root_name,
            tasks=[TaskDefinition(**t.__dict__) for t in plan.tasks],
            merge_order=plan.merge_order,
        )

    @activity.defn(name=RUN_TASK)
    def run_task(self, input: TaskInput) -> TaskResult:
        task = input.task
        activity.heartbeat(f"rendering {task.slug}")
        template = self._template(input.request)
        context = self._context(template, input.request)
        with self._scratch() as tmp:
            out = tmp / "out"
            try:
                select = task_selector(modules_for(template, context), task.slug)
                written = render(template.path, context, out, select)
                produced = files_under(out)
            except EngineError as exc:
                raise permanent(f"{task.slug}: {exc}", type(exc).__name__) from exc
            outside = [p for p in produced if not matches(p, task.path_scope)]
            if outside:
                raise permanent(
                    f"task {task.slug} wrote outside its path scope: {', '.join(outside[:5])}",
                    "PathScopeViolation",
                )
            activity.heartbeat(f"committing {len(written)} files")
            branch = branch_name(task.sequence, task.slug)
            try:
                sha = commit_task(tmp / "repo", base_message=_base_message(template), task=_task_commit(task, out))
            except EngineError as exc:
                raise ApplicationError(str(exc), type="GitError") from exc  # retryable: disk or git hiccups
            packed = build_zip(out, tmp / "files.zip", root_name="task") if produced else None
            key = f"{self._run_prefix(input.request)}/tasks/{task.sequence:03d}-{task.slug}.zip"
            stored = (
                self._artifacts.put_file(key, packed.path) if packed else self._artifacts.put_bytes(key, _EMPTY_ZIP)
            )
        return TaskResult(
            task_id=task.id, files=produced, bundle_key=key, bundle_sha256=stored.sha256, branch=branch, commit_sha=sha
        )

    def _assemble(self, input: AssembleInput, work: Path) -> Path:
        """Unpack each task's files into ``work/tasks/<id>`` and merge them, in merge
        order, into ``work/project``; two tasks writing one path is a conflict."""
        root = work / "project"
        origin: dict[str, str] = {}
        for task_id in input.plan.merge_order:
            packed = work / f"{task_id}.zip"
            self._artifacts.get_file(input.bundles[task_id], packed)
            task_root = work / "tasks" / task_id
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
        root.mkdir(exist_ok=True)
        return root

    @activity.defn(name=VERIFY)
    def verify(self, input: AssembleInput) -> VerifyResult:
        with self._scratch() as tmp:
            root = self._assemble(input, tmp)
            activity.heartbeat("verifying")
            expected = [p for t in input.plan.tasks for p in t.expected_outputs]
            result = verify_tree(root, expected)
            files = len(files_under(root))
        return VerifyResult(ok=result.ok, files=files, files_checked=result.files_checked, errors=result.errors)

    @activity.defn(name=EXPORT)
    def export(self, input: AssembleInput) -> ExportResult:
        template = self._template(input.request)
        with self._scratch() as tmp:
            root = self._assemble(input, tmp)
            history = self._history(input, template, tmp)
            meta = root / FORGEFLOW_DIR
            meta.mkdir(exist_ok=True)
            for name in input.spec.digests:
                self._artifacts.get_file(f"{input.spec.documents_key}/{name}", meta / name)
            (meta / "answers.json").write_text(_json(input.request.answers))
            files = {rel: file_digest(root / rel) for rel in files_under(root)}
            manifest = {
                "forgeflow_version": forgeflow.__version__,
                "template": {
                    "id": template.id,
                    "version": template.version,
                    "digest": template.digest,
                },
                "answers": input.request.answers,
                "spec_version": input.spec.version,
                "tasks": input.plan.merge_order,
                "git": {"main": history.main_sha, "branches": history.task_shas},
                "files": files,
            }
            (meta / "manifest.json").write_text(_json(manifest))
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

    def _history(self, input: AssembleInput, template: Template, work: Path) -> History:
        """The run's git repository, with a proof that it holds the tasks' own commits."""
        by_id = {t.id: t for t in input.plan.tasks}
        commits = [_task_commit(by_id[task_id], work / "tasks" / task_id) for task_id in input.plan.merge_order]
        for commit in commits:
            commit.root.mkdir(parents=True, exist_ok=True)
        try:
            history = build_history(work / "repo", base_message=_base_message(template), tasks=commits)
        except EngineError as exc:
            raise ApplicationError(str(exc), type="GitError") from exc
        for task_id in input.plan.merge_order:
            task = by_id[task_id]
            expected = input.commits.get(task_id)
            actual = history.task_shas[branch_name(task.sequence, task.slug)]
            if expected and expected != actual:
                raise permanent(f"task {task_id}: commit {actual} is not its recorded {expected}", "CommitMismatch")
        return history


def _base_message(template: Template) -> str:
    return f"Start from template {template.id} {template.version} ({template.digest[:12]})"


def _task_commit(task: TaskDefinition, root: Path) -> TaskCommit:
    message = f"Task {task.sequence}: {task.slug}\n\n{task.description}\n"
    return TaskCommit(branch=branch_name(task.sequence, task.slug), message=message, root=root)


def _json(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# An empty ZIP (end-of-central-directory record only): a task that renders no file.
_EMPTY_ZIP = b"PK\x05\x06" + b"\0" * 18
