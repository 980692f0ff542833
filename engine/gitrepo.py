"""A run's git history, made in memory: a base commit, one branch and one commit per task
on top of it, each merged into ``main`` in merge order, handed out as a git bundle
(:mod:`engine.gitpack`) without running git. Every commit has fixed metadata, so the same
files always give the same commit ids: a retried task recreates its commit exactly
(:func:`task_commit_sha`), and the export can prove that the history it assembles holds
the tasks' own commits. An update's history goes on top of the project's previous one
(:class:`PriorHistory`).

The history is exactly what ``git fast-import`` makes of the same tasks: the tests hold
:func:`history_bundle` to a fast-import reference (``tests/engine/gitref.py``) run by
real git."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine import EngineError, gitpack
from engine.tree import Tree, read_tree

IDENTITY = "forgeflow <forgeflow@localhost>"
TIMESTAMP = "315532800 +0000"  # 1980-01-01, the ZIP's fixed date too
GIT_TIMEOUT = 120

Files = Path | Tree


@dataclass(frozen=True)
class TaskCommit:
    branch: str
    message: str
    root: Files  # the task's files: a directory, or the files themselves


def branch_name(sequence: int, slug: str) -> str:
    return f"feat/task-{sequence:03d}-{slug}"


def _files(root: Files) -> Tree:
    return read_tree(root) if isinstance(root, Path) else root


# --- git's object format -------------------------------------------------------------

Leaf = tuple[bytes, bytes]  # a file's tree entry: (mode, blob id)
Store = dict[bytes, tuple[bytes, bytes]]  # id -> (kind, body), in the order they were made


class _Dir:
    """A directory of a tree being built. It remembers its id until something below it
    changes: main's tree is rehashed after every merge, and most of it stays as it was."""

    __slots__ = ("entries", "oid")

    def __init__(self) -> None:
        self.entries: dict[str, _Dir | Leaf] = {}
        self.oid: bytes | None = None


def _object_id(kind: bytes, body: bytes, store: Store | None = None) -> bytes:
    oid = hashlib.sha1(b"%s %d\0" % (kind, len(body)) + body, usedforsecurity=False).digest()
    if store is not None:
        store.setdefault(oid, (kind, body))
    return oid


def _leaves(files: Tree, store: Store | None) -> dict[str, Leaf]:
    # In path order, so that files listed in any order make the same pack.
    return {
        rel: (b"100755" if files[rel].executable else b"100644", _object_id(b"blob", files[rel].data, store))
        for rel in sorted(files)
    }


def _place(root: _Dir, rel: str, leaf: Leaf, *, overwrite: bool = False) -> None:
    """Put a file into a tree. ``overwrite`` is what fast-import does to a commit's
    inherited tree: a file and a directory of one name replace each other; a task's own
    files come from one directory, where they cannot collide."""
    *dirs, name = rel.split("/")
    node = root
    node.oid = None
    for part in dirs:
        child = node.entries.get(part)
        if not isinstance(child, _Dir):
            if child is not None and not overwrite:
                raise EngineError(f"{rel}: a file and a directory share the name {part!r}")
            child = node.entries[part] = _Dir()
        node = child
        node.oid = None
    if isinstance(node.entries.get(name), _Dir) and not overwrite:
        raise EngineError(f"{rel}: a file and a directory share the name {name!r}")
    node.entries[name] = leaf


def _hashed_tree(node: _Dir, store: Store | None = None) -> bytes:
    if node.oid is not None:  # hashed before, into the same store
        return node.oid
    entries: list[tuple[bytes, bytes]] = []  # (sort key, entry)
    for name, item in node.entries.items():
        raw = name.encode()
        if isinstance(item, _Dir):  # git orders a directory as if its name ended in "/"
            entries.append((raw + b"/", b"40000 %s\0%s" % (raw, _hashed_tree(item, store))))
        else:
            entries.append((raw, b"%s %s\0%s" % (item[0], raw, item[1])))
    entries.sort()
    node.oid = _object_id(b"tree", b"".join(entry for _key, entry in entries), store)
    return node.oid


def _tree_id(leaves: dict[str, Leaf], store: Store | None = None) -> bytes:
    root = _Dir()
    for rel, leaf in leaves.items():
        _place(root, rel, leaf)
    return _hashed_tree(root, store)


def _commit_id(tree: bytes, parents: Sequence[bytes], message: str, store: Store | None = None) -> bytes:
    lines = [f"tree {tree.hex()}", *(f"parent {parent.hex()}" for parent in parents)]
    lines += [f"author {IDENTITY} {TIMESTAMP}", f"committer {IDENTITY} {TIMESTAMP}", "", ""]
    # fast-import stores the message exactly as given: no newline added or stripped
    return _object_id(b"commit", "\n".join(lines).encode() + message.encode(), store)


def task_commit_sha(*, base_message: str, task: TaskCommit) -> str:
    """The id of the commit the task gets in the run's history."""
    base = _commit_id(_tree_id({}), (), base_message)
    return _commit_id(_tree_id(_leaves(_files(task.root), None)), (base,), task.message).hex()


@dataclass(frozen=True)
class History:
    main_sha: str
    task_shas: dict[str, str]  # branch -> commit
    base_sha: str | None = None  # an update's: the previous history's main, main's parent


@dataclass(frozen=True)
class PriorHistory:
    """What an update builds on: the project's last history (its bundle) and the message
    of the one commit that puts the new render on top of its ``main``."""

    bundle: bytes
    message: str


def _prior_main(prior: PriorHistory, store: Store) -> bytes:
    """The previous history's main; every object main reaches goes into ``store``, first
    and in the bundle's order, so the new bundle holds the whole previous history (and not
    the previous run's own task branches, which its main merged anyway, nor an earlier
    update's, which nothing reaches any more)."""
    refs, objects = gitpack.read_bundle(prior.bundle)
    main = dict(refs).get("refs/heads/main")
    if main is None:
        raise EngineError("the previous history has no refs/heads/main to update")
    if objects[main][0] != b"commit":
        raise EngineError("the previous history's main is not a commit")
    kept = gitpack.reachable([("refs/heads/main", main)], objects)
    store.update((oid, found) for oid, found in objects.items() if oid in kept)
    return main


def history_bundle(
    *,
    base_message: str,
    tasks: Sequence[TaskCommit],
    final_tree: Files | None = None,
    on_top_of: PriorHistory | None = None,
) -> tuple[History, bytes]:
    """The run's repository as a git bundle: every task branch, merged into main in the
    given order; with ``final_tree`` (what the template's hooks made of it), one more
    commit on main.

    An update (``on_top_of``) makes the same task branches and commits, but its main is
    one commit: the run's final tree (``final_tree``, else what the merges would give) with
    the previous history's main as its only parent, so a clone of the previous history
    pulls the update with a three-way merge. The merges and the hooks' commit are not made
    (nothing would reach them). The commit is made even when its tree is the previous
    main's: an update that changes nothing is still one in the history. The bundle holds
    every object of the previous one; the refs are this run's branches, main and HEAD."""
    store: Store = {}
    prior, message = (None, "") if on_top_of is None else (_prior_main(on_top_of, store), on_top_of.message)
    head = base = _commit_id(_tree_id({}, store), (), base_message, store)
    main = _Dir()
    branches: dict[str, bytes] = {}
    for task in tasks:
        leaves = _leaves(_files(task.root), store)
        commit = _commit_id(_tree_id(leaves, store), (base,), task.message, store)
        branches[task.branch] = commit
        for rel in leaves:  # in path order, like fast-import's, which decides what a clash leaves
            _place(main, rel, leaves[rel], overwrite=True)
        if prior is None:
            head = _commit_id(_hashed_tree(main, store), (head, commit), f"Merge branch '{task.branch}'", store)
    final = None if final_tree is None else _tree_id(_leaves(_files(final_tree), store), store)
    if prior is not None:
        tree = final if final is not None else _hashed_tree(main, store)
        head = _commit_id(tree, (prior,), message, store)
    elif final is not None:
        head = _commit_id(final, (head,), "Run the template's hooks", store)
    # The refs as `git bundle create --all` lists them: sorted, then HEAD, which tells
    # `git clone` what to check out.
    refs = sorted([("refs/heads/main", head)] + [(f"refs/heads/{b}", c) for b, c in branches.items()])
    data = gitpack.bundle([*refs, ("HEAD", head)], store)
    shas = {b: c.hex() for b, c in branches.items()}
    return History(main_sha=head.hex(), task_shas=shas, base_sha=None if prior is None else prior.hex()), data
