"""A template's rendered files, whichever its format: cookiecutter's rendered file by file
(engine.render), Copier's by Copier itself, once per answers (engine.copier_render)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.context import COPIER_DATA
from engine.copier_render import render_tree
from engine.render import TemplateFile, list_outputs, render_files
from engine.templates import Template
from engine.tree import FileData


def template_outputs(template: Template, context: Mapping[str, Any]) -> tuple[str, list[TemplateFile]]:
    """The project directory's name and every file the template renders for ``context``."""
    if template.format == "copier":
        root, tree = render_tree(template, context[COPIER_DATA])
        return root, [TemplateFile(source=rel, output=rel, copy_only=True) for rel in sorted(tree)]
    return list_outputs(template.path, dict(context), digest=template.digest, trusted=template.trusted)


def template_files(template: Template, context: Mapping[str, Any], files: list[TemplateFile]) -> dict[str, FileData]:
    """``files`` (from :func:`template_outputs` for this context), rendered."""
    if template.format == "copier":
        _root, tree = render_tree(template, context[COPIER_DATA])
        return {item.output: tree[item.output] for item in files}
    return render_files(template.path, dict(context), files=files, digest=template.digest, trusted=template.trusted)
