"""The Python version a rendered project declares, so that verify checks its code with the
grammar of that version rather than with whichever Python the worker happens to run."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import Any

from engine.lru import LRU
from engine.tree import FileData

Version = tuple[int, int]

# One clause of a version specifier that sets a lower bound: PEP 440 (">=3.10", "~=3.11",
# "==3.12.*", ">3.9") or Poetry ("^3.10", "~3.10", a bare "3.10"). Upper bounds ("<4",
# "<=3.13", "!=3.9.*") set none and do not match.
_LOWER_BOUND = re.compile(r"^\s*(?:===|>=|~=|==|>|\^|~)?\s*v?(\d+)(?:\.(\d+))?")


def lowest_python(specifier: str) -> Version | None:
    """The oldest Python 3 release a specifier admits, as (3, minor); None when it sets no
    lower bound on Python 3 (``"*"``, only upper bounds, or Python 2 admitted)."""
    lows: list[Version] = []
    for alternative in specifier.split("||"):  # Poetry's "or"
        bounds = []
        for clause in alternative.split(","):
            match = _LOWER_BOUND.match(clause)
            if match:
                bounds.append((int(match[1]), int(match[2] or 0)))
        if not bounds:
            return None  # an alternative with no lower bound admits every version
        lows.append(max(bounds))
    low = min(lows) if lows else None
    return low if low is not None and low[0] == 3 else None


def _parse_declared(pyproject: bytes) -> Version | None:
    try:
        data: dict[str, Any] = tomllib.loads(pyproject.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None  # the toml rule reports it
    candidates = (
        data.get("project", {}).get("requires-python"),
        data.get("tool", {}).get("poetry", {}).get("dependencies", {}).get("python"),
    )
    for specifier in candidates:
        if isinstance(specifier, str) and (version := lowest_python(specifier)) is not None:
            return version
    return None


# By content: every run of a template has the same pyproject.toml, and verify is run often.
_DECLARED: LRU[bytes, tuple[Version | None]] = LRU(1_000)


def _declared(pyproject: bytes) -> Version | None:
    return _DECLARED.get_or_make(pyproject, lambda: (_parse_declared(pyproject),))[0]


class DeclaredPythons:
    """Which Python each file of a project is written for: the version its nearest enclosing
    ``pyproject.toml`` declares (a monorepo may hold several), if any does."""

    def __init__(self, files: Mapping[str, FileData]) -> None:
        self._by_dir: dict[str, Version] = {}  # directory ("" for the root) -> version
        for rel, file in files.items():
            directory, _, name = rel.rpartition("/")
            if name == "pyproject.toml" and (version := _declared(file.data)) is not None:
                self._by_dir[directory] = version

    def for_file(self, rel: str) -> Version | None:
        directory = rel
        while self._by_dir:  # string slicing: verify runs this for every Python file
            directory = directory.rpartition("/")[0]
            if directory in self._by_dir:
                return self._by_dir[directory]
            if not directory:
                return None
        return None
