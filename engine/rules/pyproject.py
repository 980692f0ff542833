"""The ``pyproject`` rule: each ``pyproject.toml`` is packaging metadata that ``pip install .``
accepts. The schema is the one the build backends enforce (PEP 517/518/621 and setuptools'
table) through validate-pyproject, the library setuptools itself vendors: the check that
refuses ``project.authors[0].email = "dev@localhost"`` at install time refuses it here. The
files the metadata names (readme, license files) must exist too."""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Callable, Mapping
from fnmatch import fnmatchcase
from functools import cache
from typing import Any

from engine.lru import LRU
from engine.tree import Tree
from engine.verify import Finding

# By the file's sha256: a template renders the same pyproject.toml for most answers.
_PROBLEMS: LRU[bytes, tuple[str, ...]] = LRU(4096)
_PARSED: LRU[bytes, dict[str, Any]] = LRU(4096)
_UNPARSABLE: dict[str, Any] = {}  # kept for a file that does not parse (the LRU keeps no None)


def parsed(data: bytes) -> dict[str, Any] | None:
    """The TOML (shared: not to be changed), or None when it does not parse (the toml rule
    reports that)."""

    def parse() -> dict[str, Any]:
        try:
            return tomllib.loads(data.decode("utf-8").replace("\r\n", "\n"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError):
            return _UNPARSABLE

    document = _PARSED.get_or_make(hashlib.sha256(data).digest(), parse)
    return None if document is _UNPARSABLE else document


@cache
def _validator() -> Callable[[Mapping[str, Any]], Any]:
    # Imported and compiled on first use (about 0.2 s, once per worker): only built-in
    # projects need it. Only validate-pyproject's own plugins (setuptools, distutils): a
    # tool's schema installed beside it must not change what a project is held to.
    from validate_pyproject import api, plugins

    own = plugins.list_from_entry_points(lambda ep: ep.value.startswith("validate_pyproject."))
    validator: Callable[[Mapping[str, Any]], Any] = api.Validator(plugins=own)
    return validator


def schema_problems(data: bytes, document: Mapping[str, Any]) -> tuple[str, ...]:
    def validate() -> tuple[str, ...]:
        try:
            _validator()(document)
        except ValueError as exc:  # validate-pyproject's errors, and fastjsonschema's
            return (str(getattr(exc, "message", exc)).splitlines()[0],)
        return ()

    return _PROBLEMS.get_or_make(hashlib.sha256(data).digest(), validate)


def _named_files(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, path or glob) of every file the metadata names."""
    project = document.get("project") or {}
    named = []
    readme = project.get("readme")
    readme = readme.get("file") if isinstance(readme, dict) else readme
    if isinstance(readme, str):
        named.append(("project.readme", readme))
    license_ = project.get("license")
    if isinstance(license_, dict) and isinstance(license_.get("file"), str):
        named.append(("project.license.file", license_["file"]))
    patterns = project.get("license-files")
    if isinstance(patterns, list):
        named += [("project.license-files", p) for p in patterns if isinstance(p, str)]
    return named


def check_pyproject(files: Tree) -> list[Finding] | None:
    """None when the project has no pyproject.toml."""
    paths = sorted(rel for rel in files if rel == "pyproject.toml" or rel.endswith("/pyproject.toml"))
    if not paths:
        return None
    found = []
    for rel in paths:
        data = files[rel].data
        document = parsed(data)
        if document is None:
            continue
        for problem in schema_problems(data, document):
            message = f"{problem} (packaging metadata schema): `pip install .` refuses this file"
            found.append(Finding(rel, "pyproject", "error", message))
        root = rel[: -len("pyproject.toml")]
        present = [p[len(root) :] for p in files if p.startswith(root)]
        for field, pattern in _named_files(document):
            if not any(fnmatchcase(p, pattern) for p in present):
                message = f"`{field}` names {pattern}, which matches no file of the project: the build needs it"
                found.append(Finding(rel, "pyproject", "error", message))
    return found
