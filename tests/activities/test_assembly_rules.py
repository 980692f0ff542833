"""Verify in the activity: a built-in template's project is held to the project rules
(engine.rules), which are on the run's record; one that breaks its own install fails."""

from __future__ import annotations

import shutil

from engine import verify
from engine.templates import BUILTIN_TEMPLATES_DIR
from tests.activities.test_assembly import assembly_input

RULES = ["pyproject", "python-imports", "dependencies", "django-settings", "django-urls"]


def test_a_builtin_project_passes_its_project_rules_on_record(tmp_path):
    _store, asm, env, assemble = assembly_input(
        tmp_path, BUILTIN_TEMPLATES_DIR, "djass-saas", {"project_name": "Acme"}, trusted=True
    )
    assembled = env.run(asm.verify_and_export, assemble)
    assert assembled.verification.ok, assembled.verification.errors
    assert assembled.verification.checks == [f"passed: {rule} (in process)" for rule in RULES]
    assert assembled.export is not None


def test_a_builtin_project_that_breaks_its_own_install_fails_verify(tmp_path, monkeypatch):
    # A built-in template edited into one whose projects `pip install .` refuses (a version
    # that is not PEP 440): verify fails the run and nothing is exported.
    builtins = tmp_path / "builtins"
    shutil.copytree(BUILTIN_TEMPLATES_DIR / "djass-saas", builtins / "djass-saas")
    pyproject = builtins / "djass-saas" / "{{cookiecutter.project_slug}}" / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', 'version = "one"'))
    monkeypatch.setattr(verify, "BUILTIN_TEMPLATES_DIR", builtins)
    answers = {"project_name": "Acme"}
    _store, asm, env, assemble = assembly_input(tmp_path / "run", builtins, "djass-saas", answers, trusted=True)
    assembled = env.run(asm.verify_and_export, assemble)
    verification = assembled.verification
    assert not verification.ok and assembled.export is None
    assert [(f.path, f.rule, f.severity) for f in verification.findings] == [("pyproject.toml", "pyproject", "error")]
    assert "`project.version` must be pep440" in verification.errors[0]
    assert "failed: pyproject (in process)" in verification.checks
