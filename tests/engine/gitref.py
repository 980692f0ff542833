"""The reference history, made by real git (``git fast-import``): what the tests hold the
in-memory :func:`engine.gitrepo.history_bundle` and :func:`engine.gitrepo.task_commit_sha`
to. Never run in production."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from engine import EngineError
from engine.gitrepo import IDENTITY, TIMESTAMP, Files, History, TaskCommit, _files

GIT_TIMEOUT = 120


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
    repository: :func:`task_commit_sha`'s reference."""
    _init(repo)
    stream = _Stream()
    base = stream.commit("refs/heads/main", base_message, parent=None)
    entries = stream.blobs(task.root)
    commit = stream.commit(f"refs/heads/{task.branch}", task.message, parent=base, entries=entries)
    return stream.run(repo)[commit]


def build_history(
    repo: Path, *, base_message: str, tasks: Sequence[TaskCommit], final_tree: Files | None = None
) -> History:
    """:func:`history_bundle`'s reference, as a real repository."""
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
