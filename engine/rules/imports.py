"""Two rules on a project's imports. ``python-imports``: every import of one of the
project's own modules finds that module and the names it imports (a file a template's
condition left out, while an import of it stayed). ``dependencies``: every other import
outside the standard library comes from a dependency ``pyproject.toml`` declares, as
``pip install .`` then works and ACCEPTANCE.md promises ("each enabled integration adds its
own dependency")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from engine.rules.modules import STDLIB, Modules
from engine.verify import Finding

# Import names that do not resemble their distribution's name.
_DISTRIBUTIONS = {
    "yaml": "pyyaml",
    "PIL": "pillow",
    "dateutil": "python-dateutil",
    "jwt": "pyjwt",
    "bs4": "beautifulsoup4",
    "dotenv": "python-dotenv",
    "attr": "attrs",
    "magic": "python-magic",
}


def declared(pyproject: Mapping[str, Any]) -> list[str]:
    """The canonical names of every dependency the file declares: required, optional and
    in dependency groups (a test suite's)."""
    project = pyproject.get("project") or {}
    lists: list[Any] = [project.get("dependencies") or []]
    lists += list((project.get("optional-dependencies") or {}).values())
    lists += list((pyproject.get("dependency-groups") or {}).values())
    names: list[str] = []
    for entry in (e for group in lists if isinstance(group, list) for e in group):
        try:
            names.append(canonicalize_name(Requirement(entry).name))
        except (InvalidRequirement, TypeError):
            continue  # the pyproject rule reports it; a group include is no requirement
    return names


def provided(top: str, dependencies: Iterable[str]) -> bool:
    """Whether a dependency provides the top-level module ``top``: by the usual naming
    (sentry_sdk from sentry-sdk, storages from django-storages, opentelemetry from
    opentelemetry-sdk), or a known exception (yaml from PyYAML)."""
    name = canonicalize_name(_DISTRIBUTIONS.get(top, top))
    return any(d == name or d.endswith(f"-{name}") or d.startswith(f"{name}-") for d in dependencies)


def python_imports(modules: Modules) -> list[Finding]:
    found = []
    for module, rel in modules:
        facts = modules.facts(module)
        for imp in facts.imports if facts else ():
            problem = None if imp.guarded else modules.local_problem(module, imp)
            if problem:
                found.append(Finding(rel, "python-imports", "error", f"{problem}: importing {module} fails"))
    return found


def dependencies(modules: Modules, pyproject_path: str, dependencies: list[str]) -> list[Finding]:
    found = []
    for module, rel in modules:
        facts = modules.facts(module)
        reported: set[str] = set()
        for imp in facts.imports if facts else ():
            top = imp.module.partition(".")[0]
            if imp.guarded or imp.level or top in reported or modules.is_local(top) or top in STDLIB:
                continue
            if not provided(top, dependencies):
                reported.add(top)
                message = (
                    f"line {imp.line}: imports {top}, which no dependency in {pyproject_path} provides"
                    " (nor the project, nor the standard library): `pip install .` leaves it out"
                )
                found.append(Finding(rel, "dependencies", "error", message))
    return found
