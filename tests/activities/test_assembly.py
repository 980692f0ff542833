"""Verify and export in the activity environment: hooks, checks, history, the ZIP."""

from __future__ import annotations

import io
import shutil
import subprocess
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import assembly
from activities.assembly import AssemblyActivities
from activities.generation import GenerationActivities
from activities.projection import ProjectionActivities
from engine import verify
from engine.archive import zip_bytes
from engine.render import files_under
from engine.templates import load_template
from engine.tree import FileData, write_tree
from store.artifacts import LocalArtifactStore
from store.lifecycle import list_events
from store.projects import get_project
from workflows.types import (
    AssembleInput,
    EventRecord,
    Phase,
    PlanResult,
    ProjectionInput,
    ProjectStatus,
    SpecInput,
    SpecResult,
    TaskDefinition,
    TaskInput,
    TemplateRequest,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "templates"


def assembly_input(tmp_path, template_dir: Path, template: str, answers: dict, trusted: bool):
    """Every activity of a generation before verify and export, in order, as the workflow
    runs them: the store, the assembly activities, the environment and their input."""
    options = {
        "template_path": str(template_dir),
        "trusted_ids": frozenset({template}) if trusted else frozenset(),
        "work_dir": tmp_path / "work",
    }
    store = LocalArtifactStore(tmp_path / "artifacts")
    gen, asm, env = GenerationActivities(store, **options), AssemblyActivities(store, **options), ActivityEnvironment()
    digest = load_template(template, template_path=str(template_dir)).digest
    req = TemplateRequest(project_id=1, run_number=1, template=template, answers=answers, template_digest=digest)
    spec = env.run(gen.write_spec, SpecInput(request=req, version=1))
    plan = env.run(gen.decompose, req)
    results = [env.run(gen.run_task, TaskInput(request=req, task=t, total_tasks=len(plan.tasks))) for t in plan.tasks]
    assemble = AssembleInput(
        request=req,
        plan=plan,
        bundles={r.task_id: r.bundle_key for r in results},
        commits={r.task_id: r.commit_sha for r in results},
        spec=spec,
    )
    return store, asm, env, assemble


def generate(tmp_path, template_dir: Path, template: str, answers: dict, trusted: bool):
    """Verify and export, in the one activity that does both."""
    store, asm, env, assemble = assembly_input(tmp_path, template_dir, template, answers, trusted)
    assembled = env.run(asm.verify_and_export, assemble)
    return store, assembled.verification, assembled.export


def unzip(store, exported, dest: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(store.path_for(exported.artifact.key).read_bytes())) as zf:
        zf.extractall(dest)
    return dest


def test_trusted_hooks_run_and_match_cookiecutter(tmp_path, monkeypatch):
    monkeypatch.setenv("FORGEFLOW_SECRET_PROBE", "do-not-leak")  # the hook fails if it sees this
    store, verified, exported = generate(tmp_path, FIXTURES, "hooked-lib", {"project_name": "Hooked"}, trusted=True)
    assert verified.ok, verified.errors
    assert verified.hooks == ["ran: post_gen_project.py"]
    assert verified.checks == ['passed: python -c "import app"']
    ours = unzip(store, exported, tmp_path / "ours") / "hooked"
    monkeypatch.delenv("FORGEFLOW_SECRET_PROBE")
    reference = Path(
        cookiecutter(str(FIXTURES / "hooked-lib"), no_input=True, output_dir=str(tmp_path / "ref"), default_config=True)
    )
    ours_files = [f for f in files_under(ours) if not f.startswith(".forgeflow/")]
    assert ours_files == files_under(reference) == ["GENERATED.txt", "app.py"]
    for rel in ours_files:
        assert (ours / rel).read_bytes() == (reference / rel).read_bytes()
    # The hook's work is a commit of its own on main, after the task merges.
    repo = tmp_path / "clone"
    shutil.copy(store.path_for(exported.repository.key), tmp_path / "repo.bundle")
    subprocess.run(["git", "clone", "-q", str(tmp_path / "repo.bundle"), str(repo)], check=True)
    log = subprocess.run(["git", "log", "--first-parent", "--format=%s"], cwd=repo, capture_output=True, text=True)
    assert log.stdout.splitlines()[0] == "Run the template's hooks"
    assert sorted(p.name for p in repo.iterdir() if p.name != ".git") == ["GENERATED.txt", "app.py"]


def test_untrusted_hooks_are_skipped_on_record(tmp_path):
    store, verified, exported = generate(tmp_path, FIXTURES, "hooked-lib", {"project_name": "Hooked"}, trusted=False)
    assert verified.ok and verified.checks == []
    assert verified.hooks == ["skipped: template hooked-lib is not trusted"]
    ours = unzip(store, exported, tmp_path / "ours") / "hooked"
    assert (ours / "NOTES.txt").exists() and not (ours / "GENERATED.txt").exists()
    assert "skipped: template hooked-lib is not trusted" in (ours / ".forgeflow/manifest.json").read_text()


def test_a_failing_check_fails_verification(tmp_path):
    templates = tmp_path / "templates"
    shutil.copytree(FIXTURES / "hooked-lib", templates / "hooked-lib")
    manifest = templates / "hooked-lib" / "forgeflow.yaml"
    manifest.write_text(manifest.read_text().replace("import app", "raise SystemExit(3)"))
    _store, verified, exported = generate(tmp_path, templates, "hooked-lib", {"project_name": "Hooked"}, trusted=True)
    assert not verified.ok and exported is None
    assert verified.checks == ['failed: python -c "raise SystemExit(3)"']
    # Nothing was exported: no ZIP and no bundle in the store.
    assert not [
        p for p in (tmp_path / "artifacts").rglob("*") if p.suffix in (".zip", ".bundle") and "tasks" not in p.parts
    ]


def test_a_file_that_does_not_parse_fails_only_a_builtin_template(tmp_path, monkeypatch):
    """The same output is exported with a warning from a user template, and refused when the
    template is one of forgeflow's own (here: its directory taken for the built-ins')."""
    answers = {"project_name": "Poly"}
    _store, verified, exported = generate(tmp_path / "user", FIXTURES, "polyglot-lib", answers, trusted=False)
    assert verified.ok and exported is not None
    assert ("scaffold/values.json", "warning") in [(f.path, f.severity) for f in verified.findings]
    monkeypatch.setattr(verify, "BUILTIN_TEMPLATES_DIR", FIXTURES)
    _store, verified, exported = generate(tmp_path / "builtin", FIXTURES, "polyglot-lib", answers, trusted=False)
    assert not verified.ok and exported is None
    assert [(f.path, f.rule) for f in verified.findings if f.severity == "error"] == [("scaffold/values.json", "json")]
    assert verified.errors[0].startswith("scaffold/values.json: JSONDecodeError")


def test_hooks_run_once_for_verify_and_export(tmp_path, monkeypatch):
    runs: list[str] = []
    real_run_hook = assembly.run_hook

    def counted(template_path, hook, root, context, **options):
        runs.append(hook)
        return real_run_hook(template_path, hook, root, context, **options)

    monkeypatch.setattr(assembly, "run_hook", counted)
    _store, verified, exported = generate(tmp_path, FIXTURES, "hooked-lib", {"project_name": "Same"}, trusted=True)
    # Export takes the tree verify's hooks made on the same merge: each hook ran once.
    assert verified.ok and exported is not None
    assert runs == ["pre_gen_project", "post_gen_project"]


@pytest.mark.parametrize("answers", [{}, {"use_cli": "n"}])
def test_the_exported_zip_holds_the_cookiecutter_tree_and_the_manifest(tmp_path, answers):
    store, verified, exported = generate(tmp_path, FIXTURES, "widget-lib", answers, trusted=False)
    assert verified.ok and verified.hooks == []
    ours = unzip(store, exported, tmp_path / "ours") / "widget_lib"
    reference = Path(
        cookiecutter(
            str(FIXTURES / "widget-lib"),
            no_input=True,
            extra_context=answers,
            output_dir=str(tmp_path / "ref"),
            default_config=True,
        )
    )
    assert [f for f in files_under(ours) if not f.startswith(".forgeflow/")] == files_under(reference)
    assert sorted(p.name for p in (ours / ".forgeflow").iterdir()) == [
        "ACCEPTANCE.md",
        "DATA.md",
        "ROUTES.md",
        "SPEC.md",
        "answers.json",
        "manifest.json",
    ]


def test_two_tasks_writing_one_path_is_a_merge_conflict(tmp_path):
    store = LocalArtifactStore(tmp_path / "artifacts")
    store.put_bytes("a.zip", zip_bytes({"same.txt": FileData(b"a")}, root_name="task"))
    store.put_bytes("b.zip", zip_bytes({"same.txt": FileData(b"b")}, root_name="task"))
    req = TemplateRequest(project_id=1, run_number=1, template="widget-lib", answers={})
    task = {"description": "", "dependencies": [], "path_scope": ["**"], "expected_outputs": []}
    plan = PlanResult(
        root_name="w",
        tasks=[TaskDefinition(id=i, slug=i, sequence=n, **task) for n, i in enumerate(["a", "b"], 1)],
        merge_order=["a", "b"],
    )
    spec = SpecResult(version=1, documents_key="spec", digests={})
    assemble = AssembleInput(request=req, plan=plan, bundles={"a": "a.zip", "b": "b.zip"}, commits={}, spec=spec)
    asm = AssemblyActivities(store, template_path=str(FIXTURES))
    with pytest.raises(ApplicationError) as raised:
        ActivityEnvironment().run(asm.verify_and_export, assemble)
    assert raised.value.non_retryable and raised.value.type == "MergeConflict"
    assert "same.txt is written by both a and b" in raised.value.message


@pytest.mark.parametrize(("template", "trusted", "writes"), [("widget-lib", False, 0), ("hooked-lib", True, 1)])
def test_the_project_is_written_to_disk_only_for_hooks_and_checks(tmp_path, monkeypatch, template, trusted, writes):
    written = []
    monkeypatch.setattr(assembly, "write_tree", lambda files, root: written.append(root) or write_tree(files, root))
    _store, verified, exported = generate(tmp_path, FIXTURES, template, {}, trusted=trusted)
    assert verified.ok and exported is not None
    assert len(written) == writes  # once, for the hooks and checks; export takes their tree


@pytest.mark.parametrize("slow", [False, True], ids=["quick", "slow"])
def test_the_verify_phase_goes_on_record_with_the_ready_write_unless_verifying_takes_long(
    tmp_path, db, project_row, monkeypatch, slow
):
    """A quick verify costs no transaction of its own; a slow one (a check that takes a
    while) shows its phase while it runs. Both end with every event on record."""
    templates = tmp_path / "templates"
    shutil.copytree(FIXTURES / "hooked-lib", templates / "hooked-lib")
    if slow:
        manifest = templates / "hooked-lib" / "forgeflow.yaml"
        manifest.write_text(manifest.read_text().replace("import app", "import time; time.sleep(1.2)"))
    # Room for a quick verify: a hook and a check, each a Python started in the sandbox.
    monkeypatch.setattr(assembly, "VERIFY_RECORD_DELAY", 0.5)
    key, pid = project_row()
    store, asm, env, assemble = assembly_input(tmp_path, templates, "hooked-lib", {"project_name": "Hooked"}, True)
    asm.projection = ProjectionActivities(db, store)
    real_store, stored = asm.projection.store, []

    def spy(*writes):
        real_store(*writes)
        stored.append(([w.phase.value for w in writes], time.monotonic()))

    asm.projection.store = spy  # type: ignore[method-assign]
    now = datetime.now(UTC)

    def write(seq: int, status: ProjectStatus, phase: Phase, *kinds: str) -> ProjectionInput:
        events = [EventRecord(type=kind, key=f"{kind}:1:{seq}{n}", payload={}) for n, kind in enumerate(kinds)]
        return ProjectionInput(project_id=pid, seq=seq, status=status, phase=phase, at=now, events=events)

    first = write(1, ProjectStatus.GENERATING, Phase.VERIFY, "status_changed")
    ready = ("verification_completed", "export_completed", "project_ready", "status_changed")
    last = write(2, ProjectStatus.READY, Phase.DONE, *ready)
    assembled = env.run(asm.verify_and_export, assemble.model_copy(update={"record_first": first, "record_last": last}))
    finished = time.monotonic()
    assert assembled.verification.ok and assembled.recorded is not None
    if slow:
        assert [phases for phases, _at in stored] == [["verify"], ["done"]]
        assert finished - stored[0][1] > 0.3, "the verify phase was on record while the check ran"
    else:
        assert [phases for phases, _at in stored] == [["verify", "done"]]
    with db.session() as session:
        row = get_project(session, project_id=pid, owner_id=key.owner_id)
        kinds = [e.type for e in list_events(session, project_id=pid, after=0, limit=100)]
    assert row is not None and (row.status, row.phase, row.artifact_sha256) == (
        "ready",
        "done",
        assembled.export.artifact.sha256,
    )
    assert kinds == ["status_changed", "verification_completed", "export_completed", "project_ready", "status_changed"]
