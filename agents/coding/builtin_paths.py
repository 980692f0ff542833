"""The paths the built-in coding agent's tools take, checked (activities/builtin.py): a
model's text is data, and a path it gives never leaves the project, never names ``.git``,
and is written only within the task's path scope. Each refusal says why, for the model."""

from __future__ import annotations

from agents.coding.builtin_types import MAX_CHANGED_FILES, Overlay
from engine.paths import name_problem
from engine.plan import matches
from engine.tree import Tree


class PathRefused(ValueError):
    pass


def checked_path(path: str) -> str:
    """``path`` as a POSIX path relative to the project root, or PathRefused saying why."""
    if not path or not path.strip():
        raise PathRefused("the path is empty")
    if path.startswith(("/", "~")) or (len(path) > 1 and path[1] == ":"):
        raise PathRefused(f"{path!r} is absolute: give a path relative to the project root")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    for part in parts:
        if part == "..":
            raise PathRefused(f"{path!r} goes outside the project ('..')")
        problem = name_problem(part)
        if problem is not None:
            raise PathRefused(f"{path!r} has {problem}")
        if part.lower().rstrip(". ") == ".git" or part.lower() == "git~1":
            raise PathRefused(f"{path!r} is inside a .git directory, which a task never touches")
    if not parts:
        raise PathRefused(f"{path!r} names the project root, not a file")
    return "/".join(parts)


def in_scope(path: str, scope: list[str]) -> None:
    if not matches(path, scope):
        globs = ", ".join(scope) or "(none)"
        raise PathRefused(f"{path!r} is outside this task's path scope ({globs}): change only files matching it")


def no_clash(path: str, tree: Tree, overlay: Overlay) -> None:
    """A file where a directory is (or the other way round) could not be both; and a task
    changes at most MAX_CHANGED_FILES files."""
    if len(overlay) >= MAX_CHANGED_FILES and path not in overlay:
        raise PathRefused(f"a task may change at most {MAX_CHANGED_FILES} files")
    live = {p for p in tree if overlay.get(p, "") is not None}
    live |= {p for p, key in overlay.items() if key is not None}
    parents = {"/".join(path.split("/")[:n]) for n in range(1, path.count("/") + 1)}
    if parents & live:
        raise PathRefused(f"{path!r} is below {sorted(parents & live)[0]!r}, which is a file")
    if any(p.startswith(path + "/") for p in live):
        raise PathRefused(f"{path!r} is a directory")
