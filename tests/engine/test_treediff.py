"""What an update changes, held to real git: the files of a commit read back from a bundle
are the ones git checks out, our patch is one ``git apply`` takes and that turns the old
files into the new ones byte for byte and mode for mode, it is the patch ``git diff``
writes where the two can only agree, and the per-file counts are git's ``--numstat``."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from engine import EngineError
from engine.gitpack import read_bundle
from engine.gitrepo import TaskCommit, history_bundle
from engine.tree import FileData, read_tree, write_tree
from engine.treediff import diff_stats, tree_of_commit, unified_diff
from tests.engine.test_gitrepo import TRICKY
from tests.engine.test_update_history import ENV


def git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    done = subprocess.run(["git", *args], cwd=repo, input=stdin, capture_output=True, env=ENV, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def t(text: str | bytes, mode: int = 0o644) -> FileData:
    return FileData(text.encode() if isinstance(text, str) else text, mode)


LONG = "".join(f"line {n}\n" for n in range(1, 41))
OLD = {
    "kept.txt": t("same\n"),
    "gone.txt": t("bye\nnow\n"),
    "gone-empty": t(""),
    "edited.py": t("a = 1\nb = 2\nc = 3\n"),
    "far apart.txt": t(LONG),  # two hunks, and a name with a space
    "to-exec.sh": t("#!/bin/sh\n"),
    "exec-and-edit.sh": t("#!/bin/sh\necho one\n"),
    "lose-newline.txt": t("x\ny\n"),
    "gain-newline.txt": t("x\ny"),
    "neither-newline.txt": t("x\ny"),
    "emptied.txt": t("something\n"),
    "filled.txt": t(""),
    "naïve/ünïcode.txt": t("é\n"),
    "crlf.txt": t("one\r\ntwo\r\n"),
    "odd\fbreaks.txt": t("a\fb\x1cc\rd\n"),  # only "\n" ends a line
    '"quoted" name': t("q\n"),
    "back\\slash": t("b\n"),
}
NEW = {
    "kept.txt": t("same\n"),
    "added.txt": t("hello\nworld\n"),
    "added-empty": t(""),
    "edited.py": t("a = 1\nb = 20\nc = 3\n"),
    "far apart.txt": t(LONG.replace("line 3\n", "line three\n").replace("line 37\n", "")),
    "to-exec.sh": t("#!/bin/sh\n", 0o755),
    "exec-and-edit.sh": t("#!/bin/sh\necho two\n", 0o755),
    "lose-newline.txt": t("x\ny"),
    "gain-newline.txt": t("x\ny\n"),
    "neither-newline.txt": t("x\nz"),
    "emptied.txt": t(""),
    "filled.txt": t("now full\n"),
    "naïve/ünïcode.txt": t("è\n"),
    "naïve/新しい.txt": t("新\n"),
    "crlf.txt": t("one\r\nTWO\r\n"),
    "odd\fbreaks.txt": t("a\fb\x1cC\rd\n"),
    '"quoted" name': t("Q\n"),
    "back\\slash": t("B\n"),
    "tab\there": t("t\n"),
}
BINARY_OLD = {"image.png": t(b"\x89PNG\r\n\x1a\n\0\0"), "old.bin": t(b"\0")}
BINARY_NEW = {"image.png": t(b"\x89PNG\r\n\x1a\n\0\1"), "new.bin": t(b"\0" * 10)}
LATIN1 = {"latin1.txt": t("caf\xe9\n".encode("latin-1"))}  # text to git, but a patch is UTF-8


def committed(root: Path, files: dict[str, FileData]) -> Path:
    git(root.parent, "init", "-q", "--initial-branch=main", str(root))
    write_tree(files, root)
    git(root, "add", "-A")
    git(root, "commit", "-q", "--allow-empty", "-m", "old")
    return root


def on_disk(repo: Path) -> dict[str, tuple[bytes, bool]]:
    return {rel: (f.data, f.executable) for rel, f in read_tree(repo).items() if not rel.startswith(".git/")}


def staged_modes(repo: Path) -> dict[str, str]:
    entries = git(repo, "ls-files", "-s", "-z").decode().split("\0")
    return {entry.split("\t", 1)[1]: entry.split()[0] for entry in entries if entry}


def applied(tmp_path: Path, old: dict[str, FileData], new: dict[str, FileData]) -> Path:
    """``old`` in a real repository, our patch to ``new`` applied to it by git."""
    repo = committed(tmp_path / "repo", old)
    patch = unified_diff(old=old, new=new).encode()
    git(repo, "apply", "--check", stdin=patch)
    git(repo, "apply", "--index", stdin=patch)
    return repo


def test_git_applies_the_patch_and_gets_the_new_files(tmp_path):
    repo = applied(tmp_path, OLD, NEW)
    assert on_disk(repo) == {rel: (f.data, f.executable) for rel, f in NEW.items()}
    assert staged_modes(repo) == {rel: "100755" if f.executable else "100644" for rel, f in NEW.items()}
    assert git(repo, "diff", "--name-only") == b""  # the index and the work tree agree


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({}, NEW),  # everything new
        (OLD, {}),  # everything gone
        ({"a": t("file\n")}, {"a/b": t("now a directory\n")}),
        ({"a/b": t("a directory\n")}, {"a": t("now a file\n")}),
        ({"big.txt": t(LONG * 20)}, {"big.txt": t(LONG.replace("line 1\n", "") * 20 + "end")}),
    ],
)
def test_git_applies_the_patch_in_other_shapes(tmp_path, old, new):
    repo = applied(tmp_path, old, new)
    assert on_disk(repo) == {rel: (f.data, f.executable) for rel, f in new.items()}


def test_unchanged_files_make_no_patch():
    assert unified_diff(old=OLD, new=dict(OLD)) == ""
    assert diff_stats(old=OLD, new=dict(OLD)) == []


def git_diff(root: Path, old: dict[str, FileData], new: dict[str, FileData], *args: str) -> bytes:
    """What ``git diff`` makes of the change, staged, in a fresh repository at ``root``."""
    repo = committed(root, old)
    for rel in old:
        (repo / rel).unlink()
    write_tree(new, repo)
    git(repo, "add", "-A")
    # No text after a hunk's line numbers: git's guess at the enclosing function, which
    # our patches do not make.
    (repo / ".git/info").mkdir(exist_ok=True)
    (repo / ".git/info/attributes").write_text("* diff=plain\n")
    return git(repo, "-c", "diff.plain.xfuncname=^NEVER$", "diff", "--cached", "--no-renames", "--no-color", *args)


def test_the_patch_is_the_one_git_writes(tmp_path):
    # Each change here has only one shortest diff, so difflib and git cannot disagree.
    old = {**OLD, **BINARY_OLD}
    new = {**NEW, **BINARY_NEW}
    assert unified_diff(old=old, new=new).encode() == git_diff(tmp_path / "a", old, new)
    assert unified_diff(old=old, new=new, context=1).encode() == git_diff(tmp_path / "b", old, new, "-U1")


def test_a_file_that_is_not_utf8_is_binary_too():
    patch = unified_diff(old=LATIN1, new={"latin1.txt": t("caf\xe8\n".encode("latin-1"))})
    assert patch.endswith("Binary files a/latin1.txt and b/latin1.txt differ\n") and "@@" not in patch
    assert unified_diff(old=LATIN1, new={}).endswith("Binary files a/latin1.txt and /dev/null differ\n")
    assert diff_stats(old={}, new=LATIN1) == [
        {"path": "latin1.txt", "status": "added", "additions": 0, "deletions": 0, "binary": True}
    ]


def test_the_stats_are_gits_numstat(tmp_path):
    old = {**OLD, **BINARY_OLD}
    new = {**NEW, **BINARY_NEW}
    stats = diff_stats(old=old, new=new)
    fields = git_diff(tmp_path / "repo", old, new, "--numstat", "-z").decode().split("\0")
    numstat = {}
    for field in filter(None, fields):
        added, deleted, path = field.split("\t", 2)
        numstat[path] = (None, None) if added == "-" else (int(added), int(deleted))
    assert [s["path"] for s in stats] == sorted(numstat)
    for s in stats:
        counts = (None, None) if s["binary"] else (s["additions"], s["deletions"])
        assert counts == numstat[s["path"]], s
    status = {s["path"]: s["status"] for s in stats}
    assert status["added.txt"] == status["naïve/新しい.txt"] == status["new.bin"] == "added"
    assert status["gone.txt"] == status["old.bin"] == "deleted"
    assert status["to-exec.sh"] == "mode_changed" and status["exec-and-edit.sh"] == "modified"
    assert {s["path"] for s in stats if s["binary"]} == {"image.png", "old.bin", "new.bin"}


def test_the_files_of_a_commit_are_the_ones_git_checks_out(tmp_path):
    files = {rel: t(text, 0o755 if rel in ("run.sh", "bin/tool") else 0o644) for rel, text in TRICKY.items()}
    history, data = history_bundle(base_message="start", tasks=[TaskCommit("feat/task-001-x", "x\n", files)])
    _, objects = read_bundle(data)
    tree = tree_of_commit(objects=objects, commit=bytes.fromhex(history.main_sha))
    assert tree == files and list(tree) == sorted(files)
    (tmp_path / "h.bundle").write_bytes(data)
    git(tmp_path, "clone", "-q", str(tmp_path / "h.bundle"), "clone")
    assert on_disk(tmp_path / "clone") == {rel: (f.data, f.executable) for rel, f in tree.items()}


def oid(kind: bytes, body: bytes) -> bytes:
    return hashlib.sha1(b"%s %d\0" % (kind, len(body)) + body).digest()


def commit_of(entries: list[tuple[bytes, bytes, bytes]], extra: dict[bytes, tuple[bytes, bytes]] | None = None):
    """Objects of a commit whose tree holds ``entries`` (mode, name, id), and its id."""
    tree = b"".join(b"%s %s\0%s" % entry for entry in entries)
    commit = b"tree %s\n\nc\n" % oid(b"tree", tree).hex().encode()
    objects = {oid(b"tree", tree): (b"tree", tree), oid(b"commit", commit): (b"commit", commit), **(extra or {})}
    return objects, oid(b"commit", commit)


@pytest.mark.parametrize(
    ("mode", "name", "message"),
    [
        (b"120000", b"link", "link is a symlink"),
        (b"160000", b"sub", "sub is a submodule"),
        (b"100664", b"old", "old is of mode '100664'"),
        (b"100644", b"..", "file name '..'"),
        (b"100644", b"missing", "no blob"),
    ],
)
def test_what_a_generated_history_never_holds_is_refused(mode, name, message):
    blob = (b"blob", b"target\n")
    extra = {} if name == b"missing" else {oid(*blob): blob}
    objects, commit = commit_of([(mode, name, oid(*blob))], extra)
    with pytest.raises(EngineError, match=message):
        tree_of_commit(objects=objects, commit=commit)
    with pytest.raises(EngineError, match="no commit"):
        tree_of_commit(objects=objects, commit=b"\0" * 20)
