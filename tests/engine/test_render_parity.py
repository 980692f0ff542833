"""forgeflow's per-task rendering equals the cookiecutter tool's output, byte for byte."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from api.schemas import FLAG_FIELDS
from engine.context import build_context
from engine.plan import decompose, ownership
from engine.render import files_under, render, render_files
from engine.templates import load_template
from engine.tree import write_tree

FIXTURE_TEMPLATES = Path(__file__).parents[1] / "fixtures" / "templates"


def render_by_tasks(template_id: str, answers: dict, out: Path, template_path: str) -> list[str]:
    template = load_template(template_id, template_path=template_path)
    context = build_context(template, answers)
    plan = decompose(template, context)
    for task in plan.tasks:  # each task renders only its own files, into the shared tree
        owned = ownership(template, context)  # the worker's path: one listing, shared by every task
        render(template.path, context, out, owned.selector(task.slug), files=owned.files, trusted=template.trusted)
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


def quirky_template(root: Path, *, new_lines: str | None = None) -> Path:
    """A template with what the in-memory renderer must reproduce: a local Jinja extension,
    an include from ../templates, every newline style, a file name that renders empty, an
    executable, a private file mode, a binary and a file without a final newline."""
    template = root / "quirky"
    project = template / "{{ cookiecutter.project_slug }}"
    (project / "bin").mkdir(parents=True)
    (template / "templates").mkdir()
    (template / "local_ext.py").write_text(
        "from jinja2.ext import Extension\n\n\n"
        "class Shout(Extension):\n"
        "    def __init__(self, environment):\n"
        "        super().__init__(environment)\n"
        "        environment.filters['shout'] = lambda value: str(value).upper() + '!'\n"
    )
    settings = {"project_name": "Quirk", "project_slug": "{{ cookiecutter.project_name.lower() }}", "flag": "y"}
    settings["_extensions"] = ["local_ext.Shout"]
    if new_lines is not None:
        settings["_new_lines"] = new_lines
    (template / "cookiecutter.json").write_text(json.dumps(settings))
    (template / "templates" / "banner.txt").write_text("== {{ cookiecutter.project_name }} ==\n")
    (project / "README.md").write_text("{% include 'banner.txt' %}{{ cookiecutter.project_name | shout }}\n")
    (project / "crlf.txt").write_bytes(b"one {{ cookiecutter.flag }}\r\ntwo\r\n")
    (project / "cr.txt").write_bytes(b"one\rtwo {{ cookiecutter.flag }}\r")
    (project / "mixed.txt").write_bytes(b"a\nb\r\nc {{ cookiecutter.flag }}\r")
    (project / "no-newline.txt").write_bytes(b"{{ cookiecutter.project_slug }}")
    (project / "empty.txt").write_bytes(b"")
    (project / "blob.bin").write_bytes(b"\x00\x01{{ not rendered }}\xff" * 64)
    (project / "{% if cookiecutter.flag == 'y' %}maybe.txt{% endif %}").write_text("maybe\n")
    (project / "bin" / "tool").write_text("#!/bin/sh\necho {{ cookiecutter.project_slug }}\n")
    os.chmod(project / "bin" / "tool", 0o750)
    os.chmod(project / "crlf.txt", 0o600)
    return template


@pytest.mark.parametrize("new_lines", [None, "\r\n"])
def test_the_in_memory_renderer_matches_cookiecutter_byte_for_byte(tmp_path, new_lines):
    quirky_template(tmp_path / "templates", new_lines=new_lines)
    # A local extension is Python code: only a trusted template may load one.
    template = load_template("quirky", template_path=str(tmp_path / "templates"), trusted_ids=["quirky"])
    for n, answers in enumerate([{}, {"project_name": "Other", "flag": "n"}, {"project_name": "Third"}]):
        reference = Path(
            cookiecutter(
                str(template.path),
                no_input=True,
                extra_context=answers,
                output_dir=str(tmp_path / f"ref{n}"),
                default_config=True,
            )
        )
        context = build_context(template, answers)
        owned = ownership(template, context)
        out = tmp_path / f"ours{n}"
        for task in decompose(template, context).tasks:  # pinned: one renderer serves all answers
            files = render_files(
                template.path, context, files=owned.files_of(task.slug), digest=template.digest, trusted=True
            )
            write_tree(files, out)
        assert_same_tree(reference, out)
        assert render(template.path, context, tmp_path / f"dir{n}", trusted=True) == files_under(reference)
        assert_same_tree(reference, tmp_path / f"dir{n}")


def test_renders_in_parallel_threads_equal_renders_one_by_one(tmp_path):
    template = load_template("djass-saas")
    answer_sets = [{"project_name": f"Acme {n}", **dict.fromkeys(FLAG_FIELDS, "y" if n % 2 else "n")} for n in range(6)]
    contexts = [build_context(template, answers) for answers in answer_sets]

    def one(context: dict) -> dict:
        return render_files(template.path, context, digest=template.digest, trusted=True)

    alone = [render_files(template.path, context, trusted=True) for context in contexts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(one, contexts * 2))
    assert together == alone * 2
