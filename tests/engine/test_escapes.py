"""Templates that try to write outside the project directory are stopped."""

from __future__ import annotations

import json
import os

import pytest

from engine import PathScopeViolation
from engine.archive import zip_bytes
from engine.context import build_context
from engine.render import list_outputs, render
from engine.templates import load_template
from engine.tree import FileData, read_tree


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


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("..\\..\\..\\EVIL/f.txt", "a backslash"),
        ("dir\\f.txt", "a backslash"),
        ("C:/Windows/evil.txt", "a drive letter"),
        ("c:evil.txt", "a drive letter"),
        ("bell\x07.txt", "a control character"),
        ("new\nline.txt", "a control character"),
        ("tab\tname", "a control character"),
    ],
)
def test_names_a_windows_extractor_would_misread_fail_with_the_name(tmp_path, target, problem):
    template = hostile_template(tmp_path / "templates", target)
    context = build_context(template, {})
    with pytest.raises(PathScopeViolation, match=problem) as refused:
        list_outputs(template.path, context)
    assert repr(target) in str(refused.value)


def test_a_project_directory_name_with_a_backslash_is_refused(tmp_path):
    root = tmp_path / "templates"
    template = root / "hostile"
    (template / "{{ cookiecutter.project_slug }}").mkdir(parents=True)
    (template / "cookiecutter.json").write_text(json.dumps({"project_slug": "..\\..\\up"}))
    (template / "{{ cookiecutter.project_slug }}" / "f.txt").write_text("x\n")
    loaded = load_template("hostile", template_path=str(root))
    with pytest.raises(PathScopeViolation, match="project directory name"):
        list_outputs(loaded.path, build_context(loaded, {}))


@pytest.mark.parametrize("name", ["a\\b.txt", "../x", "/abs", "C:/x", "ok/\x01", "ok//x", "./x"])
def test_the_zip_writer_refuses_any_name_that_is_not_plain(name):
    # The renderer already refuses these; the archive checks again, as the last gate.
    with pytest.raises(PathScopeViolation):
        zip_bytes({name: FileData(b"x")}, root_name="proj")
    with pytest.raises(PathScopeViolation):
        zip_bytes({"f": FileData(b"x")}, root_name=name)


def test_a_named_pipe_in_the_output_is_refused_not_read(tmp_path):
    # A hook may leave one behind; reading it would block the worker's thread forever.
    (tmp_path / "ok.txt").write_text("x")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(PathScopeViolation, match="not a regular file"):
        read_tree(tmp_path)
