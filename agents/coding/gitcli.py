"""The git CLI on a task's repository: a git directory the coding agent never sees and a
separate work tree it writes in.

Whatever an agent can write could steer git if git read it: hooks, config (fsmonitor,
filters, aliases) and a ``.git`` live in the git directory, out of its reach, and git is
told to ignore the ones outside it (no system or global config, ``HOME`` an empty
directory of ours, ``core.hooksPath=/dev/null``). In-tree ``.gitattributes`` are
overridden from ``info/attributes``, so no line-ending conversion or merge driver comes
between the bytes on disk and the blobs. Every call has a fixed argv, literal pathspecs
and a timeout after which git and its children are killed."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Container, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine import EngineError, gitpack
from engine.gitrepo import GIT_TIMEOUT, IDENTITY, TIMESTAMP

CONFIG = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.autocrlf=false",
    "core.attributesFile=/dev/null",
    "core.excludesFile=/dev/null",
    "core.untrackedCache=false",
    "protocol.allow=never",
    "protocol.file.allow=always",
    "init.defaultBranch=main",
    "advice.detachedHead=false",
    "rerere.enabled=false",  # a recorded resolution would settle a conflict silently
    "commit.gpgSign=false",
    "gc.auto=0",  # no background gc writing into a directory that is about to be deleted
    "maintenance.auto=false",
)
# Highest precedence of all attributes: the in-tree .gitattributes cannot convert line
# endings, run filters or choose a merge driver (merge=union would hide a conflict).
ATTRIBUTES = "* -text !eol -crlf -filter -ident !working-tree-encoding !merge\n"
_NAME, _EMAIL = IDENTITY.removesuffix(">").split(" <")
_DATE = f"@{TIMESTAMP}"
_KIND_ORDER = {b"commit": 0, b"tree": 1, b"blob": 2}

Changes = dict[str, str]  # path -> "A" (added), "M" (modified) or "D" (deleted)


class GitFailed(Exception):
    """Git failed or timed out: not the agent's work refused, so a retry may help."""


def _environment(home: Path) -> dict[str, str]:
    # The worker's GIT_* variables (GIT_DIR, GIT_INDEX_FILE, ...) would point git elsewhere.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env |= {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_LITERAL_PATHSPECS": "1",  # an agent's file named '*' or ':(glob)x' is just a name
        "GIT_NO_REPLACE_OBJECTS": "1",
        "LC_ALL": "C",
        # Fixed metadata: the same trees and parents always give the same commit ids.
        "GIT_AUTHOR_NAME": _NAME,
        "GIT_AUTHOR_EMAIL": _EMAIL,
        "GIT_AUTHOR_DATE": _DATE,
        "GIT_COMMITTER_NAME": _NAME,
        "GIT_COMMITTER_EMAIL": _EMAIL,
        "GIT_COMMITTER_DATE": _DATE,
    }
    return env


@dataclass(frozen=True)
class Repo:
    git_dir: Path
    work: Path
    timeout: float = GIT_TIMEOUT

    @property
    def home(self) -> Path:
        return self.git_dir / "home"  # empty, and ours: no ~/.gitconfig or ~/.config/git

    def run(self, *args: str, stdin: bytes = b"", codes: Container[int] = (0,)) -> tuple[int, bytes]:
        argv = ["git", f"--git-dir={self.git_dir}", f"--work-tree={self.work}"]
        for setting in CONFIG:
            argv += ["-c", setting]
        argv += args
        try:
            # A session of its own, so that a timeout kills git's children too.
            proc = subprocess.Popen(
                argv,
                cwd=self.work,
                env=_environment(self.home),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise GitFailed(f"git cannot run: {exc}") from exc
        try:
            out, err = proc.communicate(stdin, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise GitFailed(f"git {args[0]} timed out after {self.timeout:g} s") from None
        if proc.returncode not in codes:
            said = [line for line in err.decode("utf-8", "replace").splitlines() if line.strip()][-3:]
            raise GitFailed(f"git {args[0]}: {'; '.join(said) or f'exit status {proc.returncode}'}")
        return proc.returncode, out

    def text(self, *args: str, stdin: bytes = b"") -> str:
        return self.run(*args, stdin=stdin)[1].decode().strip()

    def paths(self, *args: str) -> list[str]:
        """A ``-z`` listing's entries, as os.walk names them (undecodable bytes escaped)."""
        return [os.fsdecode(item) for item in self.run(*args)[1].split(b"\0") if item]


def create(*, git_dir: Path, work: Path) -> Repo:
    """A fresh repository: both directories must not exist yet (a retry gets a fresh scratch)."""
    work.mkdir(parents=True)
    git_dir.mkdir(parents=True)
    repo = Repo(git_dir=git_dir, work=work)
    repo.home.mkdir()
    repo.run("init", "-q", "--template=")  # no sample hooks, nothing from a template dir
    (git_dir / "info").mkdir(exist_ok=True)
    (git_dir / "info" / "attributes").write_text(ATTRIBUTES)
    return repo


def import_bundle(repo: Repo, *, data: bytes, ref: str) -> str:
    """The commit ``ref`` names in ``data`` (a bundle our writer made), its objects put in
    the repository. The bundle is read by our reader first: it refuses anything else."""
    refs, _objects = gitpack.read_bundle(data)
    commit = dict(refs).get(ref)
    if commit is None:
        raise EngineError(f"the bundle has no {ref} (it has {', '.join(name for name, _ in refs)})")
    path = repo.git_dir / "incoming.bundle"
    path.write_bytes(data)
    try:
        repo.run("bundle", "unbundle", str(path))
    finally:
        path.unlink()
    return commit.hex()


def commit_tree(repo: Repo, *, parents: Sequence[str], message: str) -> str:
    """The index as a commit, with fixed metadata and ``message`` stored as given; a
    commit is made even if its tree is its parent's."""
    if "\0" in message:
        raise EngineError("a commit message cannot hold a NUL character")
    tree = repo.text("write-tree")
    args = [arg for parent in parents for arg in ("-p", parent)]
    return repo.text("commit-tree", tree, *args, stdin=message.encode())


def merge(repo: Repo, *, commit: str, message: str) -> list[str]:
    """``commit`` merged into HEAD with a merge commit; the conflicting files if it conflicts
    (the work tree then left mid-merge)."""
    code, _out = repo.run("merge", "-q", "--no-ff", "--no-edit", "-m", message, "--", commit, codes=(0, 1))
    if code == 0:
        return []
    conflicts = repo.paths("diff", "--name-only", "-z", "--diff-filter=U")
    if not conflicts:
        raise GitFailed(f"git merge of {commit} failed without a conflict")
    return conflicts


def changes_by_stat(repo: Repo) -> Changes:
    """What changed by the index's stat information, without reading a file's content
    unless its size is unchanged: ``?`` untracked, ``R`` removed, ``C`` changed."""
    changes: Changes = {}
    for entry in repo.paths("ls-files", "-z", "-t", "--others", "--exclude-standard", "--modified", "--deleted"):
        tag, path = entry[0], entry[2:]
        status = {"?": "A", "R": "D"}.get(tag, "M")
        if changes.get(path) != "D":  # a removed file is listed as changed too
            changes[path] = status
    return changes


def staged_changes(repo: Repo, *, start: str) -> Changes:
    """The work tree against ``start``, as git commits it: the index is reset to the
    start's tree without stat information, so every file is read again from disk."""
    repo.run("read-tree", start)
    repo.run("add", "-A")
    items = repo.paths("diff", "--cached", "--name-status", "-z", "--no-renames", start, "--")
    # T (a type change) is a modification: symlinks and gitlinks were refused before
    return {path: status if status in ("A", "D") else "M" for status, path in zip(items[::2], items[1::2], strict=True)}


def export_bundle(repo: Repo, *, refs: Sequence[tuple[str, str]]) -> tuple[bytes, dict[bytes, tuple[bytes, bytes]]]:
    """A bundle of ``refs`` (name, commit) and everything they reach, written by our writer
    from whole objects (``git bundle create`` writes deltas our reader refuses); and the
    objects. They are in a fixed order (commits, trees, blobs; each by id), so the same
    history gives the same bytes whichever order a git version walks it in."""
    tips = sorted({commit for _name, commit in refs})
    listed = repo.run("rev-list", "--objects", *tips, "--")[1].decode()
    oids = [line.split(" ", 1)[0] for line in listed.splitlines() if line]
    raw = repo.run("cat-file", "--batch", stdin="".join(f"{oid}\n" for oid in oids).encode())[1]
    objects: dict[bytes, tuple[bytes, bytes]] = {}
    pos = 0
    for _ in oids:
        end = raw.index(b"\n", pos)
        header = raw[pos:end].split(b" ")
        if len(header) != 3 or header[1] not in _KIND_ORDER:
            raise GitFailed(f"git cat-file: unexpected {raw[pos:end][:100]!r}")
        oid, kind, size = header
        start = end + 1
        objects[bytes.fromhex(oid.decode())] = (kind, raw[start : start + int(size)])
        pos = start + int(size) + 1  # the body, then a newline
    ordered = dict(sorted(objects.items(), key=lambda item: (_KIND_ORDER[item[1][0]], item[0])))
    named = [(name, bytes.fromhex(commit)) for name, commit in refs]
    return gitpack.bundle(named, ordered), ordered
