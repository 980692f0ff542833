"""forgeflow's per-task rendering equals the cookiecutter tool's output, byte for byte."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from api.schemas import FLAG_FIELDS
from engine.context import build_context
from engine.plan import decompose, ownership
from engine.render import files_under, render
from engine.templates import load_template

FIXTURE_TEMPLATES = Path(__file__).parents[1] / "fixtures" / "templates"


def render_by_tasks(template_id: str, answers: dict, out: Path, template_path: str) -> list[str]:
    template = load_template(template_id, template_path=template_path)
    context = build_context(template, answers)
    plan = decompose(template, context)
    for task in plan.tasks:  # each task renders only its own files, into the shared tree
        owned = ownership(template, context)  # the worker's path: one listing, shared by every task
        render(template.path, context, out, owned.selector(task.slug), files=owned.files)
    return files_under(out)


def assert_same_tree(expected: Path, actual: Path) -> list[str]:
    expected_files, actual_files = files_under(expected), files_under(actual)
    assert expected_files == actual_files
    for rel in expected_files:
        assert (expected / rel).read_bytes() == (actual / rel).read_bytes(), rel
        assert os.stat(expected / rel).st_mode & 0o777 == os.stat(actual / rel).st_mode & 0o777, rel
    return expected_files


@pytest.mark.parametrize("answers", [{}, {"use_cli": "n", "license": "BSD-3-Clause"}, {"project_name": "Äbc Tool"}])
def test_fixture_template_matches_cookiecutter(tmp_path, answers):
    reference = Path(
        cookiecutter(
            str(FIXTURE_TEMPLATES / "widget-lib"),
            no_input=True,
            extra_context=answers,
            output_dir=str(tmp_path / "ref"),
            default_config=True,
        )
    )
    ours = tmp_path / "ours"
    render_by_tasks("widget-lib", answers, ours, str(FIXTURE_TEMPLATES))
    files = assert_same_tree(reference, ours)
    # The fixture exercises what matters: copy-without-render, binaries, CRLF,
    # executable bits, private variables and a conditional file.
    assert (ours / "static/index.html").read_text() == "<p>{{ not rendered }}</p>\n"
    assert b"\r\n" in (ours / "scripts/win.bat").read_bytes()
    assert os.access(ours / "scripts/run.sh", os.X_OK)
    assert (ours / "assets/logo.png").read_bytes().startswith(b"\x89PNG")
    assert "Made by" in (ours / "README.md").read_text()
    assert any(f.endswith("cli.py") for f in files) == (answers.get("use_cli", "y") == "y")


FLAGS = (
    "use_posthog",
    "use_buttondown",
    "use_s3",
    "use_stripe",
    "use_sentry",
    "generate_blog",
    "generate_docs",
    "use_mjml",
    "use_ai",
    "use_logfire",
    "use_healthchecks",
    "use_ci",
)


@pytest.mark.parametrize("value", ["y", "n"])
def test_builtin_template_matches_cookiecutter(tmp_path, value):
    answers = {"project_name": "Acme CRM", "project_main_color": "green", **dict.fromkeys(FLAG_FIELDS, value)}
    template = load_template("djass-saas")
    reference = Path(
        cookiecutter(
            str(template.path),
            no_input=True,
            extra_context=answers,
            output_dir=str(tmp_path / "ref"),
            default_config=True,
        )
    )
    render_by_tasks("djass-saas", answers, tmp_path / "ours", "")
    assert len(assert_same_tree(reference, tmp_path / "ours")) > 20
