"""Agent mode's git side with real git: task work trees from a base and the dependencies'
branches, what an agent leaves judged and committed, and the run's history merged from the
task branches; every bundle read by our reader and cloned by git."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from agents.coding import gitcli
from agents.coding.worktree import (
    MergeConflict,
    OutsideScope,
    TaskCommit,
    TaskTree,
    TooLarge,
    UnsafeFiles,
    base_bundle,
    finish_task,
    merge_tasks,
    start_task,
)
from engine import EngineError, PathScopeViolation
from engine.gitpack import commit_links, read_bundle
from engine.tree import FileData, Tree, read_tree
from engine.treediff import tree_of_commit

ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C"}
MiB = 1 << 20
BASE_FILES: Tree = {
    "README.md": FileData(b"# Project\n"),
    "run.sh": FileData(b"#!/bin/sh\necho run\n", 0o755),
    "src/app.py": FileData(b"print('base')\n"),
    "docs/old.md": FileData(b"old\n"),
    ".gitignore": FileData(b"__pycache__/\n"),
}
# Would make git write CRLF on checkout, convert on add, run a filter and take both sides
# of a conflict, were it obeyed in a task's repository (a clone of the export obeys it).
HOSTILE_ATTRIBUTES = {".gitattributes": FileData(b"* text eol=crlf filter=evil merge=union\n")}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, env=ENV, check=True).stdout.decode()


def write(root: Path, rel: str, data: bytes | str, mode: int = 0o644) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(mode)


def committed(bundle: bytes, commit: str) -> Tree:
    _refs, objects = read_bundle(bundle)
    return tree_of_commit(objects=objects, commit=bytes.fromhex(commit))


def parents(bundle: bytes, commit: str) -> list[str]:
    _refs, objects = read_bundle(bundle)
    return [p.hex() for p in commit_links(objects[bytes.fromhex(commit)][1])[1]]


def finish(tree: TaskTree, scope: list[str], **limits: object) -> TaskCommit:
    options: dict = {"max_file_bytes": MiB, "max_total_bytes": 4 * MiB, **limits}
    return finish_task(tree=tree, message=f"Build {tree.branch}\n", path_scope=scope, **options)


@pytest.fixture(scope="module")
def base() -> bytes:
    return base_bundle(files=BASE_FILES, message="Base\n")[1]


@pytest.fixture(scope="module")
def hostile_base() -> bytes:
    return base_bundle(files={**BASE_FILES, **HOSTILE_ATTRIBUTES}, message="Base\n")[1]


def build(tmp: Path, base: bytes, branch: str, writes: dict[str, str], deps=(), scope=None) -> TaskCommit:
    tree = start_task(scratch=tmp / branch.replace("/", "-"), base=base, dependencies=list(deps), branch=branch)
    for rel, text in writes.items():
        write(tree.work, rel, text)
    return finish(tree, scope or [f"{branch.split('/')[-1]}/**"])


def test_the_base_is_one_commit_of_the_files_on_main(base):
    commit, data = base_bundle(files=BASE_FILES, message="Base\n")
    assert data == base  # the same files, the same commit and bytes
    refs, _objects = read_bundle(data)
    assert refs == [("refs/heads/main", bytes.fromhex(commit)), ("HEAD", bytes.fromhex(commit))]
    assert parents(data, commit) == []
    assert committed(data, commit) == {
        rel: FileData(f.data, 0o755 if f.executable else 0o644) for rel, f in BASE_FILES.items()
    }
    with pytest.raises(PathScopeViolation):
        base_bundle(files={"../escape": FileData(b"")}, message="x")
    with pytest.raises(PathScopeViolation):
        base_bundle(files={"sub/.git/config": FileData(b"")}, message="x")


def test_a_task_with_dependencies_starts_from_their_merged_work(tmp_path, hostile_base):
    base = hostile_base
    a = build(tmp_path, base, "feat/a", {"a/one.txt": "one\n"})
    b = build(tmp_path, base, "feat/b", {"b/two.txt": "two\n"})
    tree = start_task(
        scratch=tmp_path / "c", base=base, dependencies=[("feat/a", a.bundle), ("feat/b", b.bundle)], branch="feat/c"
    )
    # The agent gets files only; git's directory is elsewhere.
    assert not (tree.work / ".git").exists() and not tree.git_dir.is_relative_to(tree.work)
    on_disk = read_tree(tree.work)
    assert on_disk["a/one.txt"].data == b"one\n" and on_disk["b/two.txt"].data == b"two\n"
    # Checked out as committed: the base's .gitattributes converted nothing.
    expected = {**BASE_FILES, **HOSTILE_ATTRIBUTES}
    assert {rel: f.data for rel, f in on_disk.items() if rel in expected} == {r: f.data for r, f in expected.items()}
    assert on_disk["run.sh"].executable
    log = git(tree.git_dir, "log", "--format=%s", tree.start)
    assert log.splitlines()[:2] == ["Merge branch 'feat/b'", "Merge branch 'feat/a'"]
    again = start_task(
        scratch=tmp_path / "c2", base=base, dependencies=[("feat/a", a.bundle), ("feat/b", b.bundle)], branch="feat/c"
    )
    assert again.start == tree.start


def test_changes_inside_the_scope_are_committed_as_they_are_on_disk(tmp_path, hostile_base):
    tree = start_task(scratch=tmp_path, base=hostile_base, dependencies=[], branch="feat/src")
    write(tree.work, "src/app.py", "print('built')\r\n")  # CRLF kept: no attribute converts it
    write(tree.work, "src/new.py", "x = 1\n")
    write(tree.work, "src/tool", "#!/bin/sh\n", 0o755)
    write(tree.work, "src/__pycache__/app.cpython-311.pyc", b"\0junk")  # ignored: not committed
    write(tree.work, "src/[weird]*.py", "literal pathspecs\n")
    (tree.work / "docs" / "old.md").unlink()
    done = finish(tree, ["src/**", "docs/**"])
    assert done.changed == ["src/[weird]*.py", "src/app.py", "src/new.py", "src/tool"]
    assert done.deleted == ["docs/old.md"] and done.discarded == []
    assert parents(done.bundle, done.commit) == [tree.start]
    on_disk = {rel: f for rel, f in read_tree(tree.work).items() if "__pycache__" not in rel}
    assert committed(done.bundle, done.commit) == on_disk
    commit = bytes.fromhex(done.commit)
    assert read_bundle(done.bundle)[0] == [("refs/heads/feat/src", commit), ("HEAD", commit)]
    # The same work again: the same commit (its parent is the start, not the branch's tip).
    assert finish(tree, ["src/**", "docs/**"]) == done


def test_a_task_that_changes_nothing_still_has_a_commit(tmp_path, base):
    tree = start_task(scratch=tmp_path, base=base, dependencies=[], branch="feat/idle")
    done = finish(tree, ["idle/**"])
    assert (done.changed, done.deleted, done.discarded) == ([], [], [])
    assert done.commit != tree.start and parents(done.bundle, done.commit) == [tree.start]
    assert committed(done.bundle, done.commit) == committed(done.bundle, tree.start)


def outside_work(tmp_path: Path, base: bytes) -> TaskTree:
    tree = start_task(scratch=tmp_path, base=base, dependencies=[], branch="feat/src")
    write(tree.work, "src/ok.py", "ok\n")
    write(tree.work, "README.md", "changed\n")
    write(tree.work, "elsewhere/new.txt", "new\n")
    write(tree.work, "elsewhere/huge.bin", b"\0" * (2 * MiB))  # discarded before anything reads it
    (tree.work / "docs" / "old.md").unlink()
    return tree


def test_changes_outside_the_scope_fail_the_task_by_name(tmp_path, base):
    tree = outside_work(tmp_path, base)
    with pytest.raises(PathScopeViolation) as caught:
        finish(tree, ["src/**"])
    assert isinstance(caught.value, OutsideScope)
    assert caught.value.paths == ["README.md", "docs/old.md", "elsewhere/huge.bin", "elsewhere/new.txt"]
    assert "'README.md', 'docs/old.md'" in str(caught.value)


def test_changes_outside_the_scope_can_be_discarded_instead(tmp_path, base):
    tree = outside_work(tmp_path, base)
    done = finish(tree, ["src/**"], on_outside="discard")
    assert done.discarded == ["README.md", "docs/old.md", "elsewhere/huge.bin", "elsewhere/new.txt"]
    assert (done.changed, done.deleted) == (["src/ok.py"], [])
    assert (tree.work / "README.md").read_bytes() == b"# Project\n" and (tree.work / "docs/old.md").exists()
    assert not (tree.work / "elsewhere/new.txt").exists()
    files = committed(done.bundle, done.commit)
    assert files == read_tree(tree.work) and files["src/ok.py"].data == b"ok\n"


@pytest.mark.parametrize("target", ["/etc/passwd", "sibling.txt"])
def test_a_symlink_is_refused_by_name(tmp_path, base, target):
    tree = start_task(scratch=tmp_path, base=base, dependencies=[], branch="feat/src")
    write(tree.work, "src/sibling.txt", "s\n")
    (tree.work / "src" / "link").symlink_to(target)
    with pytest.raises(UnsafeFiles, match="symlinks: 'src/link'"):
        finish(tree, ["src/**"])


def test_a_fifo_is_refused_without_being_read(tmp_path, base):
    tree = start_task(scratch=tmp_path, base=base, dependencies=[], branch="feat/src")
    os.mkfifo(tree.work / "src" / "pipe")
    with pytest.raises(UnsafeFiles, match=r"special files.*'src/pipe'"):
        finish(tree, ["src/**"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads whatever the modes say")
def test_what_git_could_not_read_is_refused_by_name(tmp_path, base):
    tree = start_task(scratch=tmp_path, base=base, dependencies=[], branch="feat/src")
    write(tree.work, "src/secret.py", "x\n", 0o000)
    (tree.work / "src" / "closed").mkdir(mode=0o000)
    try:
        with pytest.raises(UnsafeFiles, match=r"cannot read: 'src/closed/', 'src/secret\.py'"):
            finish(tree, ["src/**"])
    finally:
        (tree.work / "src" / "closed").chmod(0o755)


def test_files_over_the_limits_are_refused(tmp_path, base):
    tree = start_task(scratch=tmp_path, base=base, dependencies=[], branch="feat/src")
    write(tree.work, "src/big.bin", b"\1" * (2 * MiB))
    with pytest.raises(TooLarge, match=r"files over 1048576 bytes: 'src/big.bin'"):
        finish(tree, ["src/**"])
    (tree.work / "src" / "big.bin").unlink()
    for n in range(3):
        write(tree.work, f"src/part{n}.bin", bytes([n]) * (MiB - n))
    with pytest.raises(TooLarge, match=r"over 2097152: 'src/part0.bin', 'src/part1.bin', 'src/part2.bin'"):
        finish(tree, ["src/**"], max_total_bytes=2 * MiB)


@pytest.mark.parametrize("where", ["src/vendor/.git/HEAD", "src/.git", ".git/hooks/post-commit", "src/.GIT/config"])
def test_a_nested_git_is_refused(tmp_path, base, where):
    tree = start_task(scratch=tmp_path, base=base, dependencies=[], branch="feat/src")
    marker = tmp_path / "hook-ran"
    # A hook that would leave a mark, were anything ever to run it.
    write(tree.work, where, f"#!/bin/sh\ntouch {marker}\n" if "hooks" in where else "gitdir: /tmp\n", 0o755)
    with pytest.raises(UnsafeFiles, match=r"a nested \.git"):
        finish(tree, ["**"])
    assert not marker.exists()


def test_a_name_the_export_refuses_is_refused(tmp_path, base):
    tree = start_task(scratch=tmp_path, base=base, dependencies=[], branch="feat/src")
    write(tree.work, "src/back\\slash.py", "x\n")
    with pytest.raises(UnsafeFiles, match="names the export refuses"):
        finish(tree, ["src/**"])


def three_tasks(tmp: Path, base: bytes) -> list[tuple[str, bytes]]:
    a = build(tmp, base, "feat/a", {"a/one.txt": "one\n", "a/run.sh": "#!/bin/sh\n"})
    b = build(tmp, base, "feat/b", {"b/two.txt": "two\n"})
    c = build(tmp, base, "feat/c", {"c/three.txt": "three\n"}, deps=[("feat/a", a.bundle), ("feat/b", b.bundle)])
    return [("feat/a", a.bundle), ("feat/b", b.bundle), ("feat/c", c.bundle)]


def test_the_runs_history_merges_every_task_into_main(tmp_path, base):
    tasks = three_tasks(tmp_path / "tasks", base)
    merged = merge_tasks(scratch=tmp_path / "merge", base=base, tasks=tasks)
    expected = {rel: FileData(f.data, 0o755 if f.executable else 0o644) for rel, f in BASE_FILES.items()}
    expected |= {
        "a/one.txt": FileData(b"one\n"),
        "a/run.sh": FileData(b"#!/bin/sh\n"),
        "b/two.txt": FileData(b"two\n"),
        "c/three.txt": FileData(b"three\n"),
    }
    assert merged.files == expected
    refs, _objects = read_bundle(merged.bundle)
    assert [name for name, _ in refs] == [
        "refs/heads/feat/a",
        "refs/heads/feat/b",
        "refs/heads/feat/c",
        "refs/heads/main",
        "HEAD",
    ]
    assert merged.branches == {name: read_bundle(data)[0][0][1].hex() for name, data in tasks}
    # Real git takes it as a remote: clone, the files checked out, the merges, fsck.
    (tmp_path / "run.bundle").write_bytes(merged.bundle)
    git(tmp_path, "clone", "-q", str(tmp_path / "run.bundle"), "clone")
    clone = tmp_path / "clone"
    assert git(clone, "rev-parse", "HEAD").strip() == merged.main
    on_disk = {rel: f for rel, f in read_tree(clone).items() if not rel.startswith(".git/")}
    assert on_disk == expected
    merges = git(clone, "log", "--first-parent", "--merges", "--format=%s", "main").splitlines()
    assert merges == ["Merge branch 'feat/c'", "Merge branch 'feat/b'", "Merge branch 'feat/a'"]
    graph = git(clone, "log", "--graph", "--oneline", "main")
    assert "|\\" in graph and graph.count("Merge branch") == 3  # c's start is main's merge of b
    git(clone, "fsck", "--strict", "--no-dangling")
    assert git(clone, "status", "--porcelain") == ""


def test_the_same_inputs_give_the_same_commits_and_bytes(tmp_path, base):
    runs = []
    for n in range(2):
        tasks = three_tasks(tmp_path / f"tasks{n}", base)
        merged = merge_tasks(scratch=tmp_path / f"merge{n}", base=base, tasks=tasks, message_for=lambda b: f"Take {b}")
        runs.append((tasks, merged.main, merged.bundle))
    assert runs[0] == runs[1]


def test_two_tasks_changing_one_file_conflict_by_name(tmp_path, hostile_base):
    base = hostile_base  # its merge=union would hide the conflict, were it obeyed
    a = build(tmp_path, base, "feat/a", {"README.md": "# A\n"}, scope=["README.md"])
    b = build(tmp_path, base, "feat/b", {"README.md": "# B\n"}, scope=["README.md"])
    tasks = [("feat/a", a.bundle), ("feat/b", b.bundle)]
    with pytest.raises(MergeConflict, match=r"'feat/b' conflicts in 'README\.md'") as caught:
        merge_tasks(scratch=tmp_path / "merge", base=base, tasks=tasks)
    assert (caught.value.branch, caught.value.files) == ("feat/b", ["README.md"])
    with pytest.raises(MergeConflict, match=r"'feat/b' conflicts in 'README\.md'"):
        start_task(scratch=tmp_path / "c", base=base, dependencies=tasks, branch="feat/c")


def test_branch_names_and_bundles_are_checked(tmp_path, base):
    for bad in ["-x", "main", "a..b", "feat/.hidden", "x.lock", "a b"]:
        with pytest.raises(EngineError, match="not a task branch name"):
            start_task(scratch=tmp_path / "bad", base=base, dependencies=[], branch=bad)
    with pytest.raises(EngineError, match="has no refs/heads/feat/a"):
        start_task(scratch=tmp_path / "x", base=base, dependencies=[("feat/a", base)], branch="feat/b")
    with pytest.raises(EngineError, match="not a bundle"):
        start_task(scratch=tmp_path / "y", base=b"junk", dependencies=[], branch="feat/b")


def test_a_dependencys_merge_is_the_commit_git_merge_makes(tmp_path, hostile_base):
    a = build(tmp_path, hostile_base, "feat/a", {"a/one.txt": "one\n"})
    b = build(tmp_path, hostile_base, "feat/b", {"b/two.txt": "two\n"})
    deps = [("feat/a", a.bundle), ("feat/b", b.bundle)]
    tree = start_task(scratch=tmp_path / "c", base=hostile_base, dependencies=deps, branch="feat/c")
    # The same merges by `git merge --no-ff` (which runs `git stash create` besides).
    repo = gitcli.create(git_dir=tmp_path / "ref" / "git", work=tmp_path / "ref" / "work")
    main, *commits = gitcli.import_bundles(
        repo, [(hostile_base, "refs/heads/main"), (a.bundle, "refs/heads/feat/a"), (b.bundle, "refs/heads/feat/b")]
    )
    repo.run("checkout", "-q", "-b", "feat/c", main, "--")
    for (name, _data), commit in zip(deps, commits, strict=True):
        repo.run("merge", "-q", "--no-ff", "--no-edit", "-m", f"Merge branch '{name}'", "--", commit)
    assert repo.text("rev-parse", "HEAD") == tree.start
    # Checked out once, at the end: the index and the work tree are that commit's.
    assert gitcli.Repo(git_dir=tree.git_dir, work=tree.work).text("status", "--porcelain") == ""
