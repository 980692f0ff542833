"""A Copier template's ``_tasks``: run for a trusted template only, in the sandbox, in the
project, rendered by Copier with the answers; an untrusted template's never run, and one
with Jinja extensions is refused when it loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import EngineError
from engine.context import build_context, validate_answers
from engine.copier_render import run_tasks
from engine.outputs import template_outputs
from engine.sandbox import SandboxConfig
from engine.templates import load_template
from engine.tree import FileData, write_tree

COPIER_YML = """\
_tasks:
  - "echo made for {{ project_slug }} > from-task.txt"
  - command: ["sh", "-c", "echo $COPIER_OPERATION > operation.txt"]
  - command: "touch never.txt"
    when: "{{ use_extra }}"
  - command: "pwd > where.txt"
    working_directory: sub
project_slug:
  type: str
  default: demo
use_extra:
  type: bool
  default: false
"""


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    root = tmp_path / "templates" / "tasked"
    (root / "sub").mkdir(parents=True)
    (root / "copier.yml").write_text(COPIER_YML)
    (root / "README.md.jinja").write_text("{{ project_slug }}\n")
    (root / "sub" / "keep.txt").write_text("kept\n")
    return tmp_path / "templates"


def test_a_trusted_templates_tasks_run_in_the_project(templates: Path, tmp_path: Path) -> None:
    template = load_template("tasked", template_path=str(templates), trusted_ids={"tasked"})
    assert template.format == "copier" and template.has_tasks
    answers = validate_answers(template, {"project_slug": "acme"})
    root, files = template_outputs(template, build_context(template, answers))
    project = tmp_path / "work" / root
    write_tree({f.output: FileData(b"x") for f in files}, project)
    ran = run_tasks(template, answers, project, sandbox=SandboxConfig())
    assert (project / "from-task.txt").read_text() == "made for acme\n"
    assert (project / "operation.txt").read_text() == "copy\n"
    assert not (project / "never.txt").exists()
    assert (project / "sub" / "where.txt").read_text().strip().endswith("/sub")  # its working_directory
    assert ran[2] == "skipped: task 3 (its condition is false)" and ran[0].startswith("ran: task 1: echo made for acme")


def test_an_untrusted_templates_tasks_do_not_run(templates: Path, tmp_path: Path) -> None:
    template = load_template("tasked", template_path=str(templates))
    assert template.has_tasks and not template.trusted
    with pytest.raises(EngineError, match="not trusted"):
        run_tasks(template, {}, tmp_path, sandbox=SandboxConfig())


def test_an_untrusted_template_with_jinja_extensions_is_refused(templates: Path) -> None:
    (templates / "tasked" / "copier.yml").write_text("_jinja_extensions: [some_module.Ext]\nname: x\n")
    with pytest.raises(EngineError, match="run Python code"):
        load_template("tasked", template_path=str(templates))
