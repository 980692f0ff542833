"""A client's text in a trusted template's hook: cookiecutter renders hook scripts with the
answers, so a value that breaks out of a naive script's quoting becomes shell. That shell runs
in the sandbox: it writes nothing outside the project and reads nothing of the worker."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.context import build_context
from engine.hooks import run_hook
from engine.sandbox import SandboxConfig, unavailable_reason
from engine.templates import load_template

WHY_NOT = unavailable_reason(SandboxConfig())
pytestmark = pytest.mark.skipif(WHY_NOT is not None and not os.environ.get("CI"), reason=str(WHY_NOT))


def naive_template(root: Path) -> Path:
    template = root / "naive"
    (template / "hooks").mkdir(parents=True)
    (template / "{{ cookiecutter.project_slug }}").mkdir()
    (template / "cookiecutter.json").write_text(json.dumps({"project_name": "x", "project_slug": "x"}))
    (template / "{{ cookiecutter.project_slug }}" / "README.md").write_text("hi\n")
    # The author quotes the value naively: a client's `"` ends the string.
    hook = template / "hooks" / "post_gen_project.sh"
    hook.write_text('#!/bin/sh\necho "{{ cookiecutter.project_name }}" > name.txt\n')
    hook.chmod(0o755)
    return template


@pytest.mark.parametrize("breakout", ['"; touch {marker}; echo "', "$(touch {marker})", "`touch {marker}`"])
def test_a_clients_text_that_becomes_shell_runs_only_in_the_sandbox(tmp_path, breakout):
    marker = tmp_path / "host-marker"
    naive_template(tmp_path / "templates")
    template = load_template("naive", template_path=str(tmp_path / "templates"), trusted_ids=["naive"])
    context = build_context(template, {"project_name": breakout.format(marker=marker), "project_slug": "x"})
    project = tmp_path / "work" / "project"
    project.mkdir(parents=True)
    assert run_hook(template.path, "post_gen_project", project, context, sandbox=SandboxConfig(), trusted=True)
    assert (project / "name.txt").exists()  # the hook ran, the client's text in it
    assert not marker.exists()  # and what it became could not write outside the project
    # Unsandboxed (what the same template did before), it would have: the test can fail.
    run_hook(template.path, "post_gen_project", project, context, sandbox=SandboxConfig(mode="off"), trusted=True)
    assert marker.exists()
