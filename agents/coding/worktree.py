"""Agent mode's git side: a coding agent builds its task in a work tree of the run's
history, and what it leaves there on disk, checked, becomes the task's commit. The ground
truth is git, not what the agent says it did.

A run's history is what :mod:`engine.gitrepo` makes in plan mode: a base commit on
``main`` (:func:`base_bundle`), one branch per task from there (:func:`start_task`, with
its dependencies' branches merged in), one commit per task (:func:`finish_task`), and
every task branch merged into ``main`` in merge order (:func:`merge_tasks`). All of it
goes from activity to activity as bundles our own writer makes and reader reads
(:mod:`engine.gitpack`), and has fixed metadata: a retry with the same inputs makes the
same commits.

Git's processes are most of a task's time here: git makes the work tree, the index, the
blobs, trees and merges in as few commands as that takes (:mod:`agents.coding.gitcli`);
commits, diffs of trees and bundles come from its objects (:mod:`agents.coding.gitobjects`)."""

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agents.coding import gitcli
from agents.coding.gitcli import Repo
from agents.coding.gitobjects import Changes, commit_bundle
from engine import EngineError, PathScopeViolation
from engine.paths import name_problem, safe_relative
from engine.plan import matches
from engine.tree import Tree
from engine.treediff import tree_of_commit

LISTED = 20  # paths an error names; the rest are counted
_BRANCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(?:/[A-Za-z0-9][A-Za-z0-9_.-]*)*\Z")


def _listing(paths: Sequence[str]) -> str:
    more = len(paths) - LISTED
    return ", ".join(repr(p) for p in paths[:LISTED]) + (f" and {more} more" if more > 0 else "")


class RefusedWork(EngineError):
    """What an agent left in its work tree that cannot become its task's commit."""

    def __init__(self, what: str, paths: Sequence[str], *, ordered: bool = False) -> None:
        self.paths = list(paths) if ordered else sorted(paths)
        super().__init__(f"{what}: {_listing(self.paths)}")


class UnsafeFiles(RefusedWork):
    """Symlinks, special files, a nested ``.git`` or names the export refuses."""


class TooLarge(RefusedWork):
    pass


class OutsideScope(RefusedWork, PathScopeViolation):
    pass


class MergeConflict(EngineError):
    def __init__(self, *, branch: str, files: Sequence[str]) -> None:
        self.branch = branch
        self.files = sorted(files)
        super().__init__(f"merging branch {branch!r} conflicts in {_listing(self.files)}")


@dataclass(frozen=True)
class TaskTree:
    work: Path  # the agent's: files only, no .git
    git_dir: Path  # never the agent's
    branch: str
    start: str  # the commit the task starts from


@dataclass(frozen=True)
class TaskCommit:
    commit: str
    changed: list[str]  # added or modified
    deleted: list[str]
    discarded: list[str]  # changes outside the path scope, reverted
    bundle: bytes  # the task branch's whole history: refs/heads/<branch> and HEAD


@dataclass(frozen=True)
class MergedHistory:
    main: str
    files: Tree  # main's files
    branches: dict[str, str]  # task branch -> commit
    bundle: bytes  # main, every task branch and HEAD


def _check_branch(name: str) -> None:
    # Stricter than git's check-ref-format: no name can be read as an option or a range.
    if not _BRANCH.match(name) or ".." in name or name.endswith(".lock") or name in ("main", "HEAD"):
        raise EngineError(f"{name!r} is not a task branch name")


def _is_dot_git(name: str) -> bool:
    # As git itself reads names on the filesystems a checkout may land on (NTFS, HFS+).
    lowered = name.lower()
    return lowered.rstrip(". ") == ".git" or lowered == "git~1"


def base_bundle(*, files: Tree, message: str) -> tuple[str, bytes]:
    """The run's base: one commit holding ``files`` on ``main``, and its bundle."""
    for rel in files:
        if safe_relative(rel) != rel or any(_is_dot_git(part) for part in rel.split("/")):
            raise PathScopeViolation(f"{rel!r} cannot be a path in the base")
    with tempfile.TemporaryDirectory(prefix="forgeflow-base-") as tmp:
        repo = gitcli.create(git_dir=Path(tmp, "git"), work=Path(tmp, "work"))
        for rel in sorted(files):
            target = repo.work / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(files[rel].data)
            target.chmod(0o755 if files[rel].executable else 0o644)
        repo.run("add", "-A", "--force")  # a .gitignore among the files hides none of them
        tree = repo.text("write-tree")
        objects = gitcli.read_objects(repo)
    return commit_bundle(objects, tree=tree, parents=[], message=message, ref="refs/heads/main")


def start_task(*, scratch: Path, base: bytes, dependencies: Sequence[tuple[str, bytes]], branch: str) -> TaskTree:
    """A work tree for a task in ``scratch/work`` (its git directory in ``scratch/git``):
    the base's main with each dependency's branch (name, bundle) merged in the given order,
    on a new branch ``branch``."""
    _check_branch(branch)
    for name, _data in dependencies:
        _check_branch(name)
    repo = gitcli.create(git_dir=scratch / "git", work=scratch / "work")
    bundles = [(base, "refs/heads/main"), *((data, f"refs/heads/{name}") for name, data in dependencies)]
    main, *commits = gitcli.import_bundles(repo, bundles)
    merges = [(name, commit, f"Merge branch '{name}'") for (name, _), commit in zip(dependencies, commits, strict=True)]
    start = _merged(repo, main, merges)
    repo.run("checkout", "-q", "-b", branch, start, "--")  # the work tree and the index, once
    return TaskTree(work=repo.work, git_dir=repo.git_dir, branch=branch, start=start)


def _merged(repo: Repo, head: str, merges: Sequence[tuple[str, str, str]]) -> str:
    """``head`` with each (branch, commit, message) merged into it in order: the last merge."""
    for name, commit, message in merges:
        merged, conflicts = gitcli.merge(repo, head=head, commit=commit, message=message)
        if merged is None:
            raise MergeConflict(branch=name, files=conflicts)
        head = merged
    return head


def _scan(work: Path) -> dict[str, int]:
    """Every regular file of the work tree (ignored ones too) and its size. Anything git
    could be led astray by, or that the export cannot hold, is refused wherever it is."""
    sizes: dict[str, int] = {}
    found: dict[str, list[str]] = {
        "a nested .git": [],
        "symlinks": [],
        "special files (fifos, sockets, devices)": [],
        "files or directories it cannot read": [],  # git would fail on them, retry after retry
    }
    nested, links, special, unreadable = found.values()
    todo = [""]
    while todo:  # a stack, not os.walk: every entry's lstat is needed anyway
        prefix = todo.pop()
        try:
            entries = list(os.scandir(work / prefix))
        except OSError:
            unreadable.append(prefix or ".")
            continue
        for entry in entries:
            rel, info = prefix + entry.name, entry.stat(follow_symlinks=False)
            if _is_dot_git(entry.name):
                nested.append(rel)
            elif stat.S_ISLNK(info.st_mode):
                links.append(rel)
            elif stat.S_ISDIR(info.st_mode):
                todo.append(rel + "/")
            elif not stat.S_ISREG(info.st_mode):
                special.append(rel)
            elif not info.st_mode & stat.S_IRUSR and not os.access(entry.path, os.R_OK):
                unreadable.append(rel)
            else:
                sizes[rel] = info.st_size
    for what, paths in found.items():
        if paths:
            raise UnsafeFiles(f"the work tree holds {what}", paths)
    return sizes


@dataclass(frozen=True)
class _Limits:
    scope: Sequence[str]
    max_file_bytes: int
    max_total_bytes: int
    on_outside: Literal["fail", "discard"]


def _bad_name(path: str) -> bool:
    try:
        path.encode()
    except UnicodeEncodeError:  # not UTF-8 on disk; a git tree could not hold it
        return True
    return any(name_problem(part) for part in path.split("/"))


def _judge(repo: Repo, *, start: str, changes: Changes, sizes: Mapping[str, int], limits: _Limits) -> list[str]:
    """Refuse what ``changes`` may not hold; the changes outside the scope, reverted when
    they are to be discarded."""
    outside = sorted(path for path in changes if not matches(path, limits.scope))
    if outside and limits.on_outside == "fail":
        raise OutsideScope(f"changes outside the task's path scope {list(limits.scope)}", outside)
    if outside:
        for path in outside:
            if changes[path] == "A":
                (repo.work / path).unlink(missing_ok=True)  # no symlinks in the tree: it stays inside
        tracked = b"\0".join(os.fsencode(path) for path in outside if changes[path] != "A")
        if tracked:
            repo.run("checkout", "-q", start, "--pathspec-from-file=-", "--pathspec-file-nul", stdin=tracked)
    dropped = set(outside)
    written = [path for path, status in changes.items() if status != "D" and path not in dropped]
    bad = [path for path in written if _bad_name(path)]
    if bad:
        raise UnsafeFiles("file names the export refuses", bad)

    def size(path: str) -> int:
        return sizes[path] if path in sizes else os.lstat(repo.work / path).st_size

    big = [path for path in written if size(path) > limits.max_file_bytes]
    if big:
        raise TooLarge(f"files over {limits.max_file_bytes} bytes", big)
    total = sum(size(path) for path in written)
    if total > limits.max_total_bytes:
        largest = sorted(written, key=lambda path: (-size(path), path))
        raise TooLarge(f"changed files of {total} bytes, over {limits.max_total_bytes}", largest, ordered=True)
    return outside


def finish_task(
    *,
    tree: TaskTree,
    message: str,
    path_scope: Sequence[str],
    max_file_bytes: int,
    max_total_bytes: int,
    on_outside: Literal["fail", "discard"] = "fail",
) -> TaskCommit:
    """The work tree as the agent left it on disk, checked and committed, with ``tree.start``
    as its parent, as the tip of the task's branch in its bundle (a commit even if nothing
    changed, so every task has one; the same work gives the same commit however often this
    runs)."""
    repo = Repo(git_dir=tree.git_dir, work=tree.work)
    limits = _Limits(path_scope, max_file_bytes, max_total_bytes, on_outside)
    sizes = _scan(tree.work)
    # First judged by the index's stat information, so a huge or misplaced file is refused
    # (or discarded) before git copies it into its object store ...
    discarded = _judge(repo, start=tree.start, changes=gitcli.changes_by_stat(repo), sizes=sizes, limits=limits)
    # ... then by git's own reading of every file, which is what gets committed.
    staged, objects, changes = gitcli.staged_changes(repo, start=tree.start)
    more = _judge(repo, start=tree.start, changes=changes, sizes=sizes, limits=limits)
    if more:
        discarded += more
        staged, objects, changes = gitcli.staged_changes(repo, start=tree.start)
    # The commit lives in its bundle alone: the task's repository goes with the task.
    commit, data = commit_bundle(
        objects, tree=staged, parents=[tree.start], message=message, ref=f"refs/heads/{tree.branch}"
    )
    return TaskCommit(
        commit=commit,
        changed=sorted(path for path, status in changes.items() if status != "D"),
        deleted=sorted(path for path, status in changes.items() if status == "D"),
        discarded=sorted(set(discarded)),
        bundle=data,
    )


def merge_tasks(
    *,
    scratch: Path,
    base: bytes,
    tasks: Sequence[tuple[str, bytes]],
    message_for: Callable[[str], str] | None = None,
) -> MergedHistory:
    """The run's history: the base's main, each task branch (name, bundle) merged into it
    in the given order."""
    names = [name for name, _data in tasks]
    for name in names:
        _check_branch(name)
    if len(set(names)) != len(names):
        raise EngineError("a task branch is given twice")
    repo = gitcli.create(git_dir=scratch / "git", work=scratch / "work")
    main, *commits = gitcli.import_bundles(
        repo, [(base, "refs/heads/main"), *((data, f"refs/heads/{name}") for name, data in tasks)]
    )
    branches = dict(zip(names, commits, strict=True))
    message = message_for or (lambda name: f"Merge branch '{name}'")
    head = _merged(repo, main, [(name, commit, message(name)) for name, commit in branches.items()])
    # The refs as `git bundle create --all` lists them: sorted, then HEAD, which tells
    # `git clone` what to check out.
    refs = sorted([("refs/heads/main", head), *((f"refs/heads/{b}", c) for b, c in branches.items())])
    data, objects = gitcli.export_bundle(repo, refs=[*refs, ("HEAD", head)])
    files = tree_of_commit(objects=objects, commit=bytes.fromhex(head))
    return MergedHistory(main=head, files=files, branches=branches, bundle=data)
