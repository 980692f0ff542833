"""Renders of the built-in template, and a way to break one file of them."""

from __future__ import annotations

from engine.context import build_context
from engine.render import render_files
from engine.templates import load_template
from engine.tree import FileData, Tree


def render(answers: dict) -> Tree:
    """The built-in template's project for these answers, unchecked (build_context takes any
    value: what a run would render if a bad one got past validation)."""
    template = load_template("djass-saas")
    return render_files(template.path, build_context(template, answers), digest=template.digest)


def replaced(tree: Tree, path: str, old: str, new: str) -> Tree:
    text = tree[path].data.decode()
    assert old in text, f"{old!r} is not in {path}"
    return {**tree, path: FileData(text.replace(old, new, 1).encode())}
