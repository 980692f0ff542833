"""load_template re-checks a template's files at most once per RECHECK_SECONDS, and an
edited template is picked up at the next check."""

from __future__ import annotations

import json

from engine import templates
from engine.templates import load_template


def write_template(root, text: str):
    project = root / "edited" / "{{ cookiecutter.project_slug }}"
    project.mkdir(parents=True, exist_ok=True)
    (root / "edited" / "cookiecutter.json").write_text(json.dumps({"project_slug": "demo"}))
    (project / "README.md").write_text(text)


def test_an_edited_template_is_picked_up_at_the_next_check(tmp_path, monkeypatch):
    write_template(tmp_path, "first\n")
    first = load_template("edited", template_path=str(tmp_path))
    monkeypatch.setattr(templates, "RECHECK_SECONDS", 0.0)
    write_template(tmp_path, "second, longer\n")
    second = load_template("edited", template_path=str(tmp_path))
    assert second.digest != first.digest
    assert load_template("edited", template_path=str(tmp_path)) is second  # unchanged: the cached one


def test_within_the_interval_the_tree_is_not_walked(tmp_path, monkeypatch):
    write_template(tmp_path, "text\n")
    monkeypatch.setattr(templates, "RECHECK_SECONDS", 3600.0)
    first = load_template("edited", template_path=str(tmp_path))
    walks = []
    monkeypatch.setattr(templates, "_signature", lambda path: walks.append(path) or (0, 0, 0))
    assert load_template("edited", template_path=str(tmp_path)) is first
    assert walks == []
