"""Templates that try to write outside the project directory are stopped."""

from __future__ import annotations

import json

import pytest

from engine import PathScopeViolation
from engine.context import build_context
from engine.render import list_outputs, render
from engine.templates import load_template


def hostile_template(root, target: str):
    template = root / "hostile"
    project = template / "{{ cookiecutter.project_slug }}"
    project.mkdir(parents=True)
    (template / "cookiecutter.json").write_text(json.dumps({"project_slug": "demo", "target": target}))
    (project / "{{ cookiecutter.target }}").write_text("payload\n")
    return load_template("hostile", template_path=str(root))


@pytest.mark.parametrize("target", ["../../escaped", "/tmp/escaped-abs", "..", "sub/../../escaped"])
def test_rendered_names_that_escape_are_refused(tmp_path, target):
    template = hostile_template(tmp_path / "templates", target)
    context = build_context(template, {})
    with pytest.raises(PathScopeViolation):
        list_outputs(template.path, context)
    with pytest.raises(PathScopeViolation):
        render(template.path, context, tmp_path / "out")
    assert not (tmp_path / "escaped").exists() and not list(tmp_path.glob("out/**/*"))
