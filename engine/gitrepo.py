"""Real git history for a run, written with ``git fast-import``: one branch and one commit
per task, merged into ``main`` in merge order. Every commit has fixed metadata, so the
same files always give the same commit ids: a retried task recreates its commit exactly,
and the export can prove that the history it assembles holds the tasks' own commits."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine import EngineError
from engine.render import files_under

IDENTITY = "forgeflow <forgeflow@localhost>"
TIMESTAMP = "315532800 +0000"  # 1980-01-01, the ZIP's fixed date too
GIT_TIMEOUT = 120


@dataclass(frozen=True)
class TaskCommit:
    branch: str
    message: str
    root: Path  # the task's files


def branch_name(sequence: int, slug: str) -> str:
    return f"feat/task-{sequence:03d}-{slug}"


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

    def blobs(self, root: Path) -> list[tuple[str, str, int]]:
        entries = []
        for rel in files_under(root):
            path = root / rel
            mark = self.mark()
            self.parts.append(b"blob\nmark :%d\n" % mark)
            self.data(path.read_bytes())
            mode = "100755" if os.stat(path).st_mode & stat.S_IXUSR else "100644"
            entries.append((mode, rel, mark))
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
            self.parts.append(f"M {mode} :{blob} {rel}\n".encode())
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
    _git(["init", "--quiet", "--bare", "--initial-branch=main", str(repo)], repo.parent)


def commit_task(repo: Path, *, base_message: str, task: TaskCommit) -> str:
    """Commit a task's files on its own branch, on top of the run's base commit."""
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
    repo: Path, *, base_message: str, tasks: Sequence[TaskCommit], final_tree: Path | None = None
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
