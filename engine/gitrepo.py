"""Real git history for a run, written with ``git fast-import``: one branch and one commit
per task, merged into ``main`` in merge order. Every commit has fixed metadata, so the
same files always give the same commit ids: a retried task recreates its commit exactly,
and the export can prove that the history it assembles holds the tasks' own commits.

A task only needs its commit's id, so :func:`task_commit_sha` computes it from git's
object format without running git; the export's one ``fast-import`` must (and is tested
to) arrive at the same ids."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import EngineError
from engine.tree import FileData, Tree, read_tree

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


def _object_id(kind: bytes, body: bytes) -> bytes:
    return hashlib.sha1(b"%s %d\0" % (kind, len(body)) + body, usedforsecurity=False).digest()


def _tree_id(files: Tree) -> bytes:
    root: dict[str, Any] = {}
    for rel, file in files.items():
        *dirs, name = rel.split("/")
        node = root
        for part in dirs:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise EngineError(f"{rel}: a file and a directory share the name {part!r}")
        if isinstance(node.get(name), dict):
            raise EngineError(f"{rel}: a file and a directory share the name {name!r}")
        node[name] = file
    return _hashed_tree(root)


def _hashed_tree(node: dict[str, Any]) -> bytes:
    entries: list[tuple[bytes, bytes]] = []  # (sort key, entry)
    for name, item in node.items():
        raw = name.encode()
        if isinstance(item, FileData):
            mode, key, oid = (b"100755" if item.executable else b"100644"), raw, _object_id(b"blob", item.data)
        else:  # git orders a directory as if its name ended in "/"
            mode, key, oid = b"40000", raw + b"/", _hashed_tree(item)
        entries.append((key, b"%s %s\0%s" % (mode, raw, oid)))
    entries.sort()
    return _object_id(b"tree", b"".join(entry for _key, entry in entries))


def _commit_id(tree: bytes, parent: bytes | None, message: str) -> bytes:
    lines = [f"tree {tree.hex()}"]
    if parent is not None:
        lines.append(f"parent {parent.hex()}")
    lines += [f"author {IDENTITY} {TIMESTAMP}", f"committer {IDENTITY} {TIMESTAMP}", "", ""]
    # fast-import stores the message exactly as given: no newline added or stripped
    return _object_id(b"commit", "\n".join(lines).encode() + message.encode())


def task_commit_sha(*, base_message: str, task: TaskCommit) -> str:
    """The id of the commit :func:`commit_task` (and :func:`build_history`) makes for this
    task, computed in-process."""
    base = _commit_id(_tree_id({}), None, base_message)
    return _commit_id(_tree_id(_files(task.root)), base, task.message).hex()


# --- git itself ------------------------------------------------------------------------


def _env() -> dict[str, str]:
    # No user or system configuration may change what git writes.
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "HOME": os.devnull,
        "LC_ALL": "C",
    }


def _git(args: Sequence[str], cwd: Path, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, input=stdin, capture_output=True, env=_env(), timeout=GIT_TIMEOUT, check=False
        )
    except FileNotFoundError as exc:
        raise EngineError("git is not installed on this worker") from exc
    if done.returncode != 0:
        raise EngineError(f"git {args[0]} failed: {done.stderr.decode(errors='replace').strip()[:500]}")
    return done.stdout


def _quoted(path: str) -> str:
    # fast-import reads an unquoted path to the end of the line; a C-style quoted one
    # may hold anything.
    if not path.startswith('"') and "\n" not in path:
        return path
    escaped = path.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


class _Stream:
    """A fast-import stream; blobs are written once and referred to by mark."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.next_mark = 1

    def mark(self) -> int:
        self.next_mark += 1
        return self.next_mark - 1

    def data(self, payload: bytes) -> None:
        self.parts += [b"data %d\n" % len(payload), payload, b"\n"]

    def blobs(self, root: Files) -> list[tuple[str, str, int]]:
        files = _files(root)
        entries = []
        for rel in sorted(files):
            mark = self.mark()
            self.parts.append(b"blob\nmark :%d\n" % mark)
            self.data(files[rel].data)
            entries.append(("100755" if files[rel].executable else "100644", rel, mark))
        return entries

    def commit(
        self,
        ref: str,
        message: str,
        *,
        parent: int | None,
        merge: int | None = None,
        entries: Sequence[tuple[str, str, int]] = (),
        replace: bool = False,
    ) -> int:
        mark = self.mark()
        header = f"commit {ref}\nmark :{mark}\nauthor {IDENTITY} {TIMESTAMP}\ncommitter {IDENTITY} {TIMESTAMP}\n"
        self.parts.append(header.encode())
        self.data(message.encode())
        if parent is not None:
            self.parts.append(b"from :%d\n" % parent)
        if merge is not None:
            self.parts.append(b"merge :%d\n" % merge)
        if replace:
            self.parts.append(b"deleteall\n")
        for mode, rel, blob in entries:
            self.parts.append(f"M {mode} :{blob} {_quoted(rel)}\n".encode())
        self.parts.append(b"\n")
        return mark

    def run(self, repo: Path) -> dict[int, str]:
        marks = repo / "forgeflow.marks"
        _git(["fast-import", "--quiet", f"--export-marks={marks}"], repo, b"".join(self.parts) + b"done\n")
        found = {}
        for line in marks.read_text().splitlines():
            mark, sha = line.split()
            found[int(mark.lstrip(":"))] = sha
        return found


def _init(repo: Path) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    # An empty --template: no sample hooks or other files nobody reads.
    _git(["init", "--quiet", "--bare", "--template=", "--initial-branch=main", str(repo)], repo.parent)


def commit_task(repo: Path, *, base_message: str, task: TaskCommit) -> str:
    """Commit a task's files on its own branch, on top of the run's base commit, in a real
    repository (the task activity uses :func:`task_commit_sha` instead)."""
    _init(repo)
    stream = _Stream()
    base = stream.commit("refs/heads/main", base_message, parent=None)
    entries = stream.blobs(task.root)
    commit = stream.commit(f"refs/heads/{task.branch}", task.message, parent=base, entries=entries)
    return stream.run(repo)[commit]


@dataclass(frozen=True)
class History:
    main_sha: str
    task_shas: dict[str, str]  # branch -> commit


def build_history(
    repo: Path, *, base_message: str, tasks: Sequence[TaskCommit], final_tree: Files | None = None
) -> History:
    """The run's repository: every task branch, merged into main in the given order; with
    ``final_tree`` (what the template's hooks made of it), one more commit on main."""
    _init(repo)
    stream = _Stream()
    head = stream.commit("refs/heads/main", base_message, parent=None)
    base = head
    branch_marks: dict[str, int] = {}
    for task in tasks:
        entries = stream.blobs(task.root)
        commit = stream.commit(f"refs/heads/{task.branch}", task.message, parent=base, entries=entries)
        branch_marks[task.branch] = commit
        head = stream.commit(
            "refs/heads/main", f"Merge branch '{task.branch}'", parent=head, merge=commit, entries=entries
        )
    if final_tree is not None:
        entries = stream.blobs(final_tree)
        head = stream.commit("refs/heads/main", "Run the template's hooks", parent=head, entries=entries, replace=True)
    shas = stream.run(repo)
    return History(main_sha=shas[head], task_shas={b: shas[m] for b, m in branch_marks.items()})


def bundle(repo: Path, dest: Path) -> Path:
    _git(["bundle", "create", "--quiet", str(dest), "--all"], repo)
    return dest


def tree_files(repo: Path, ref: str = "main") -> list[str]:
    return sorted(_git(["ls-tree", "-r", "--name-only", ref], repo).decode().splitlines())
