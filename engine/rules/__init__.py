"""Rules over a whole rendered project, beyond each file parsing: what forgeflow's own
templates promise in their ACCEPTANCE.md (``pip install .`` works, the Django project
starts and its URLs resolve), checked in the worker's process on the files in memory,
without installing or running anything. Built-in templates only (:func:`rules_for`): their
output is ours to get right, and a finding is an error that fails the run.

| rule | checks |
| --- | --- |
| ``pyproject`` | each pyproject.toml against the packaging schema (validate-pyproject); the files it names exist |
| ``python-imports`` | imports of the project's own modules find the module and the names |
| ``dependencies`` | other imports come from the standard library or a declared dependency |
| ``django-settings`` | the settings import without a NameError, set what Django needs, name what exists |
| ``django-urls`` | includes and views resolve from ROOT_URLCONF; every reversed URL name is declared |

A rule reads what it needs from each file once per content (sha256), as the parse rules do."""

from __future__ import annotations

from engine.rules.django import check_django
from engine.rules.imports import declared, dependencies, python_imports
from engine.rules.modules import Modules
from engine.rules.pyproject import check_pyproject, parsed
from engine.templates import Template
from engine.tree import Tree
from engine.verify import Finding, ProjectRules, is_builtin


def check_project(files: Tree) -> dict[str, list[Finding]]:
    """Findings by rule, for each rule that found something to check."""
    out: dict[str, list[Finding]] = {}
    pyproject = check_pyproject(files)
    if pyproject is not None:
        out["pyproject"] = pyproject
    # The project's root: where its pyproject.toml is (the shallowest), else the top.
    roots = sorted((r for r in files if r == "pyproject.toml" or r.endswith("/pyproject.toml")), key=len)
    root = roots[0][: -len("pyproject.toml")] if roots else ""
    modules = Modules(files, root)
    if not modules.paths:
        return out
    out["python-imports"] = python_imports(modules)
    document = parsed(files[roots[0]].data) if roots else None
    declared_names = declared(document) if document is not None else None
    if declared_names is not None:
        out["dependencies"] = dependencies(modules, roots[0], declared_names)
    out.update(check_django(files, modules, declared_names) or {})
    return out


def rules_for(template: Template) -> ProjectRules | None:
    """The project rules a template's runs are held to: forgeflow's own templates only."""
    return check_project if is_builtin(template) else None
