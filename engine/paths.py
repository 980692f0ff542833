"""What a path in a generated project may look like, wherever it is written: on disk, in a
git tree, in a ZIP. Each file of a project reaches users' machines, some of them Windows,
whose extractors read a backslash as a separator and ``C:`` as a drive; so a name is held
to the rules every common extractor agrees is harmless, and anything else fails the
project with the name in the error."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from engine import PathScopeViolation

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def name_problem(name: str) -> str | None:
    """Why a single path component is refused, or None."""
    if name in ("", ".", ".."):
        return f"the component {name!r}"
    if "\\" in name:
        return "a backslash"
    if _CONTROL.search(name):
        return "a control character"
    if _DRIVE.match(name):
        return "a drive letter"
    return None


def safe_relative(output: str) -> str:
    """``output`` as a POSIX path relative to the project root, or PathScopeViolation."""
    if output.startswith("/"):
        raise PathScopeViolation(f"rendered path {output!r} is absolute")
    parts = [p for p in output.split("/") if p not in ("", ".")]  # as the filesystem would fold them
    if not parts:
        raise PathScopeViolation(f"rendered path {output!r} is empty")
    for part in parts:
        problem = name_problem(part)
        if problem is not None:
            raise PathScopeViolation(f"rendered path {output!r} has {problem}; it could escape the project directory")
    return PurePosixPath(*parts).as_posix()


def check_root_name(root_name: str) -> None:
    """The project directory's own name: one safe component."""
    problem = name_problem(root_name) if "/" not in root_name else "a slash"
    if problem is not None:
        raise PathScopeViolation(f"the project directory name {root_name!r} has {problem}")
