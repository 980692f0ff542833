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
import zlib
from collections.abc import Container, Sequence
from dataclasses import dataclass
from pathlib import Path

from agents.coding.gitobjects import (
    Changes,
    bundle_of,
    commit_object,
    indexed_pack,
    stripspace,
    tree_changes,
    tree_of,
)
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
_KINDS = (b"commit", b"tree", b"blob")


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
    """A fresh repository: both directories must not exist yet (a retry gets a fresh scratch).
    Its git directory is what ``git init --template=`` makes (nothing from a template dir, no
    sample hooks), written here: git init probes the filesystem and rewrites its config five
    times, in a process of its own for every task."""
    work.mkdir(parents=True)
    git_dir.mkdir(parents=True)
    for folder in ("home", "info", "objects/info", "objects/pack", "refs/heads", "refs/tags"):
        (git_dir / folder).mkdir(parents=True)
    (git_dir / "HEAD").write_text("ref: refs/heads/main\n")
    # No reflogs: nothing reads the history of refs in a directory deleted after the task.
    (git_dir / "config").write_text(
        "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = false\n"
    )
    (git_dir / "info" / "attributes").write_text(ATTRIBUTES)
    return Repo(git_dir=git_dir, work=work)


def import_bundles(repo: Repo, bundles: Sequence[tuple[bytes, str]]) -> list[str]:
    """The commit each (bundle, ref) names, every bundle's objects put in the repository.
    Each bundle is read by our reader, which refuses anything our writer did not make and
    checks every object's id against its content; what ``git index-pack`` would check again
    in a process of its own. Their objects then go in as one pack and its index."""
    commits: list[str] = []
    objects: dict[bytes, tuple[bytes, bytes]] = {}
    for data, ref in bundles:
        refs, found = gitpack.read_bundle(data)
        commit = dict(refs).get(ref)
        if commit is None:
            raise EngineError(f"the bundle has no {ref} (it has {', '.join(name for name, _ in refs)})")
        commits.append(commit.hex())
        objects.update(found)
    name, pack, index = indexed_pack(objects)
    folder = repo.git_dir / "objects" / "pack"
    (folder / f"{name}.pack").write_bytes(pack)
    (folder / f"{name}.idx").write_bytes(index)  # last: git reads a pack once its index exists
    return commits


def merge(repo: Repo, *, head: str, commit: str, message: str) -> tuple[str | None, list[str]]:
    """``commit`` merged into ``head`` as ``git merge --no-ff -m message`` merges it (ort,
    the message cleaned up as git cleans it), and the merge commit written in the
    repository: (that commit, []); (None, the conflicting files) if it conflicts. Neither
    the index nor the work tree is touched: since 2.38 ``git merge`` also runs ``git stash
    create`` every time, a process no merge here needs."""
    code, out = repo.run("merge-tree", "--write-tree", "--no-messages", "--name-only", "-z", head, commit, codes=(0, 1))
    tree, *conflicts = [item for item in out.split(b"\0") if item]
    if code == 1:
        if not conflicts:
            raise GitFailed(f"git merge-tree of {commit} failed without a conflict")
        return None, [os.fsdecode(path) for path in conflicts]
    merged, body = commit_object(tree=tree.decode(), parents=[head, commit], message=stripspace(message))
    write_object(repo, merged, b"commit", body)
    return merged, []


def write_object(repo: Repo, oid: str, kind: bytes, body: bytes) -> None:
    """A loose object, as git stores one: zlib of its header and body, named by its id."""
    folder = repo.git_dir / "objects" / oid[:2]
    folder.mkdir(exist_ok=True)
    (folder / oid[2:]).write_bytes(zlib.compress(b"%s %d\0" % (kind, len(body)) + body))


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


def staged_changes(repo: Repo, *, start: str) -> tuple[str, dict[bytes, tuple[bytes, bytes]], Changes]:
    """The work tree as git commits it (the index reset to the start's tree without stat
    information, so every file is read again from disk), as a tree; every object of the
    repository, that tree's among them; and what changed from the start."""
    repo.run("read-tree", start)
    repo.run("add", "-A")
    tree = repo.text("write-tree")
    objects = read_objects(repo)
    return tree, objects, tree_changes(objects, tree_of(objects, start), bytes.fromhex(tree))


def read_objects(repo: Repo) -> dict[bytes, tuple[bytes, bytes]]:
    """Every object of the repository (one ``cat-file`` for them all): the scratch
    repository of one task holds nothing else of size, and what the refs of a bundle do not
    reach stays out of it (:func:`agents.coding.gitobjects.bundle_of`)."""
    raw = repo.run("cat-file", "--batch-all-objects", "--batch", "--unordered")[1]
    objects: dict[bytes, tuple[bytes, bytes]] = {}
    pos = 0
    while pos < len(raw):
        end = raw.index(b"\n", pos)
        header = raw[pos:end].split(b" ")
        if len(header) != 3 or header[1] not in _KINDS:
            raise GitFailed(f"git cat-file: unexpected {raw[pos:end][:100]!r}")
        oid, kind, size = header
        start = end + 1
        objects[bytes.fromhex(oid.decode())] = (kind, raw[start : start + int(size)])
        pos = start + int(size) + 1  # the body, then a newline
    return objects


def export_bundle(repo: Repo, *, refs: Sequence[tuple[str, str]]) -> tuple[bytes, dict[bytes, tuple[bytes, bytes]]]:
    """A bundle of ``refs`` (name, commit) and everything they reach, written by our writer
    from whole objects (``git bundle create`` writes deltas our reader refuses); and the
    objects, in the bundle's fixed order."""
    return bundle_of(refs, read_objects(repo))
