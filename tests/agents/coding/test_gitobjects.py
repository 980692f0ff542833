"""A task repository's objects read in Python, held to git's own answers: the commit
``git commit-tree`` writes, the message ``git merge -m`` stores (``git stripspace``), what
``git diff --name-status --no-renames`` says changed between two trees, and the index
``git index-pack`` makes of a pack."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from agents.coding import gitcli
from agents.coding.gitobjects import commit_object, indexed_pack, stripspace, tree_changes, tree_of
from engine import EngineError, gitpack

MESSAGES = [
    "Task 1: api\n\nBuild the API.\n",
    "no newline at the end",
    "\n\n  leading blank lines\n\n\n\nthen three  \t\nand trailing spaces   \n\n\n",
    "Ünïcödé ✓\r\nCRLF line\r\n",
    "",
]


@pytest.fixture
def repo(tmp_path: Path) -> gitcli.Repo:
    return gitcli.create(git_dir=tmp_path / "git", work=tmp_path / "work")


def write(repo: gitcli.Repo, files: dict[str, tuple[str, int]]) -> str:
    """The work tree made to hold exactly ``files`` (path -> (text, mode)), as a tree id."""
    for path in sorted(repo.work.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    for rel, (text, mode) in files.items():
        target = repo.work / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)
    repo.run("add", "-A")
    return repo.text("write-tree")


@pytest.mark.parametrize("message", MESSAGES)
def test_a_commit_is_what_git_commit_tree_writes(repo, message):
    tree = write(repo, {"a.txt": ("a\n", 0o644)})
    root, root_body = commit_object(tree=tree, parents=[], message=message)
    assert root == repo.text("commit-tree", tree, stdin=message.encode())
    child, _body = commit_object(tree=tree, parents=[root], message=message)
    gitcli.write_object(repo, root, b"commit", root_body)
    assert child == repo.text("commit-tree", tree, "-p", root, stdin=message.encode())
    assert repo.text("cat-file", "-t", root) == "commit"  # a loose object git reads back
    with pytest.raises(EngineError, match="NUL"):
        commit_object(tree=tree, parents=[], message="a\0b")


@pytest.mark.parametrize("message", MESSAGES)
def test_a_merge_message_is_cleaned_up_as_git_does(repo, message):
    env = {**os.environ, "LC_ALL": "C"}
    expected = subprocess.run(["git", "stripspace"], input=message.encode(), capture_output=True, env=env, check=True)
    assert stripspace(message).encode() == expected.stdout


def test_what_changed_between_two_trees_is_what_git_diff_says(repo):
    old = write(
        repo,
        {
            "same/deep/x.py": ("x\n", 0o644),
            "mode.sh": ("#!/bin/sh\n", 0o644),
            "edited.txt": ("before\n", 0o644),
            "gone/a.txt": ("a\n", 0o644),
            "gone/sub/b.txt": ("b\n", 0o644),
            "file_then_dir": ("f\n", 0o644),
            "dir_then_file/c.txt": ("c\n", 0o644),
        },
    )
    new = write(
        repo,
        {
            "same/deep/x.py": ("x\n", 0o644),
            "mode.sh": ("#!/bin/sh\n", 0o755),
            "edited.txt": ("after\n", 0o644),
            "file_then_dir/inner.txt": ("i\n", 0o644),
            "dir_then_file": ("now a file\n", 0o644),
            "added/deep/new.txt": ("n\n", 0o644),
        },
    )
    objects = gitcli.read_objects(repo)
    items = repo.paths("diff-tree", "-r", "-z", "--name-status", "--no-renames", old, new)
    expected = {path: "M" if status == "T" else status for status, path in zip(items[::2], items[1::2], strict=True)}
    got = tree_changes(objects, bytes.fromhex(old), bytes.fromhex(new))
    assert got == expected and list(got) == sorted(got)
    assert tree_changes(objects, bytes.fromhex(new), bytes.fromhex(new)) == {}
    commit, body = commit_object(tree=new, parents=[], message="x\n")
    assert tree_of({**objects, bytes.fromhex(commit): (b"commit", body)}, commit) == bytes.fromhex(new)
    with pytest.raises(EngineError, match="no tree"):
        tree_changes({}, bytes.fromhex(old), bytes.fromhex(new))


def test_a_pack_and_its_index_are_what_git_index_pack_makes_of_them(repo, tmp_path):
    tree = write(
        repo, {f"src/{n}.py": (f"x = {n}\n" * n, 0o644) for n in range(40)} | {"run.sh": ("#!/bin/sh\n", 0o755)}
    )
    commit, body = commit_object(tree=tree, parents=[], message="Base\n")
    objects = {**gitcli.read_objects(repo), bytes.fromhex(commit): (b"commit", body)}
    name, pack, index = indexed_pack(objects)
    (tmp_path / f"{name}.pack").write_bytes(pack)
    subprocess.run(["git", "index-pack", str(tmp_path / f"{name}.pack")], check=True, capture_output=True)
    assert (tmp_path / f"{name}.idx").read_bytes() == index
    # In a repository of its own, git reads every object back and finds nothing amiss.
    other = gitcli.create(git_dir=tmp_path / "other" / "git", work=tmp_path / "other" / "work")
    assert gitcli.import_bundles(
        other, [(gitpack.bundle([("refs/heads/main", bytes.fromhex(commit))], objects), "refs/heads/main")]
    ) == [commit]
    assert gitcli.read_objects(other) == objects
    other.run("fsck", "--strict", "--no-dangling", commit)
