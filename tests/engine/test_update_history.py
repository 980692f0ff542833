"""An update's history: the new render is one commit on top of the project's previous
``main``, so that a clone of the previous history pulls the update with git's three-way
merge; held to what real git (clone, log, pull, fsck) makes of the bundles."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from engine import EngineError
from engine.gitpack import bundle, commit_links, reachable, read_bundle
from engine.gitrepo import History, PriorHistory, TaskCommit, branch_name, history_bundle, task_commit_sha
from engine.tree import FileData, read_tree

V1, V2, V3 = (f"Start from template t {v}.0.0 (abc)" for v in (1, 2, 3))
UPDATE = "Update from template t 1.0.0 to 2.0.0\n"
# No configuration of the machine's may change what git does; the user's commits need a name.
ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "HOME": os.devnull,
    "LC_ALL": "C",
    **{
        f"GIT_{who}_{what}": value
        for who in ("AUTHOR", "COMMITTER")
        for what, value in (("NAME", "U"), ("EMAIL", "u@u"))
    },
}


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=ENV, check=False)


def git(cwd: Path, *args: str) -> str:
    done = run(cwd, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def files(spec: dict[str, str], executable: frozenset[str] = frozenset()) -> dict[str, FileData]:
    return {rel: FileData(text.encode(), 0o755 if rel in executable else 0o644) for rel, text in spec.items()}


def render_files(version: int) -> list[dict[str, FileData]]:
    """Template t's tasks' files at a version: v2 changes one line of the settings and the
    README, drops a file, adds one and makes a script executable; it leaves the views alone."""
    settings = f"NAME = 'proj'\nVERSION = {version}\nDEBUG = False\n"
    core = {"README.md": f"# proj\n\nMade from template t {version}.0.0.\n", "app/settings.py": settings}
    app = {"app/views.py": "def index():\n    return 'hi'\n", "tool.sh": "#!/bin/sh\n"}
    app |= {"old.txt": "going\n"} if version == 1 else {"new.txt": "coming\n"}
    return [files(core), files(app, frozenset() if version == 1 else frozenset({"tool.sh"}))]


def render(version: int) -> list[TaskCommit]:
    core, app = render_files(version)
    return [
        TaskCommit(branch_name(1, "core"), "Task 1: core\n", core),
        TaskCommit(branch_name(2, "app"), "Task 2: app\n", app),
    ]


def merged(version: int) -> dict[str, FileData]:
    return {rel: file for task in render_files(version) for rel, file in task.items()}


def hooked(version: int) -> dict[str, FileData]:
    return {**merged(version), "GENERATED.txt": FileData(b"made by a hook\n")}


def v1_and_v2(tmp_path: Path) -> tuple[History, Path, History, Path]:
    first, data = history_bundle(base_message=V1, tasks=render(1), final_tree=hooked(1))
    second, update = history_bundle(
        base_message=V2, tasks=render(2), final_tree=hooked(2), on_top_of=PriorHistory(data, UPDATE)
    )
    (tmp_path / "v1.bundle").write_bytes(data)
    (tmp_path / "v2.bundle").write_bytes(update)
    return first, tmp_path / "v1.bundle", second, tmp_path / "v2.bundle"


def clone(bundle_path: Path, dest: Path) -> Path:
    git(bundle_path.parent, "clone", "-q", str(bundle_path), str(dest))
    return dest


def worktree(repo: Path) -> dict[str, FileData]:
    return {rel: file for rel, file in read_tree(repo).items() if not rel.startswith(".git/")}


def test_an_update_is_one_commit_on_top_of_the_previous_main(tmp_path):
    v1, v1_path, v2, v2_path = v1_and_v2(tmp_path)
    assert v2.base_sha == v1.main_sha and v1.base_sha is None
    # The task commits are the ones a run without a previous history makes.
    alone, _ = history_bundle(base_message=V2, tasks=render(2), final_tree=hooked(2))
    assert v2.task_shas == alone.task_shas
    for task in render(2):
        assert v2.task_shas[task.branch] == task_commit_sha(base_message=V2, task=task)
    repo = clone(v2_path, tmp_path / "clone")
    assert git(repo, "rev-parse", "HEAD").strip() == v2.main_sha
    assert git(repo, "log", "-1", "--format=%P", "main").split() == [v1.main_sha]
    assert git(repo, "log", "-1", "--format=%B", "main") == UPDATE + "\n"  # log adds a newline
    subjects = git(repo, "log", "--first-parent", "--format=%s", "main").splitlines()
    assert subjects == [
        UPDATE.strip(),
        "Run the template's hooks",
        *[f"Merge branch '{t.branch}'" for t in reversed(render(1))],
        V1,
    ]
    assert worktree(repo) == hooked(2)
    assert os.access(repo / "tool.sh", os.X_OK)
    remote = set(git(repo, "for-each-ref", "--format=%(refname)", "refs/remotes/origin").split())
    assert remote == {f"refs/remotes/origin/{name}" for name in ("HEAD", "main", *v2.task_shas)}
    for branch, sha in v2.task_shas.items():
        assert git(repo, "rev-parse", f"origin/{branch}").strip() == sha
    fsck = run(repo, "fsck", "--strict", "--full", "--no-dangling")
    assert (fsck.returncode, fsck.stdout + fsck.stderr) == (0, "")
    # Every object of the previous bundle is in this one, and every object is reachable:
    # no merge or hooks commit of this run was made.
    _, old = read_bundle(v1_path.read_bytes())
    _, new = read_bundle(v2_path.read_bytes())
    assert set(old) <= set(new)
    reachable = git(repo, "rev-list", "--objects", "--all").splitlines()
    assert len(reachable) == len(new)
    commits = sum(kind == b"commit" for kind, _body in new.values())
    assert commits == sum(kind == b"commit" for kind, _body in old.values()) + 1 + len(render(2)) + 1


def test_a_clone_of_the_previous_history_pulls_the_update(tmp_path):
    v1, v1_path, v2, v2_path = v1_and_v2(tmp_path)
    repo = clone(v1_path, tmp_path / "clone")
    (repo / "app/views.py").write_text("def index():\n    return 'my own words'\n")
    git(repo, "commit", "-qam", "My change")
    pulled = run(repo, "-c", "pull.rebase=false", "pull", "--no-edit", str(v2_path), "main")
    assert pulled.returncode == 0, pulled.stderr
    assert git(repo, "status", "--porcelain") == ""
    parents = git(repo, "log", "-1", "--format=%P").split()
    assert parents[1] == v2.main_sha and git(repo, "rev-parse", "HEAD~1~1").strip() == v1.main_sha
    expected = hooked(2) | {"app/views.py": FileData(b"def index():\n    return 'my own words'\n")}
    assert worktree(repo) == expected
    assert not (repo / "old.txt").exists() and os.access(repo / "tool.sh", os.X_OK)


def test_a_change_to_a_line_the_update_changes_conflicts(tmp_path):
    _, v1_path, _, v2_path = v1_and_v2(tmp_path)
    repo = clone(v1_path, tmp_path / "clone")
    settings = repo / "app/settings.py"
    settings.write_text(settings.read_text().replace("VERSION = 1", "VERSION = 'mine'"))
    git(repo, "commit", "-qam", "My version")
    pulled = run(repo, "-c", "pull.rebase=false", "pull", "--no-edit", str(v2_path), "main")
    assert pulled.returncode != 0
    assert "CONFLICT (content): Merge conflict in app/settings.py" in pulled.stdout
    text = settings.read_text()
    assert "<<<<<<< HEAD\nVERSION = 'mine'\n=======\nVERSION = 2\n>>>>>>> " in text
    # Only that file: the rest of the update merged cleanly.
    assert git(repo, "diff", "--name-only", "--diff-filter=U").split() == ["app/settings.py"]
    assert (repo / "new.txt").read_text() == "coming\n" and not (repo / "old.txt").exists()


def test_an_update_that_changes_nothing_is_still_a_commit(tmp_path):
    v1, data = history_bundle(base_message=V1, tasks=render(1), final_tree=hooked(1))
    same, update = history_bundle(
        base_message=V1, tasks=render(1), final_tree=hooked(1), on_top_of=PriorHistory(data, "Nothing\n")
    )
    assert same.main_sha != v1.main_sha and same.task_shas == v1.task_shas
    (tmp_path / "same.bundle").write_bytes(update)
    repo = clone(tmp_path / "same.bundle", tmp_path / "clone")
    assert git(repo, "log", "-1", "--format=%P %s").split() == [v1.main_sha, "Nothing"]
    assert git(repo, "rev-parse", "main^{tree}") == git(repo, "rev-parse", "main~1^{tree}")


def test_without_a_final_tree_main_holds_what_the_merges_make(tmp_path):
    _, data = history_bundle(base_message=V1, tasks=render(1))
    merges, plain = history_bundle(base_message=V2, tasks=render(2))
    update, updated = history_bundle(base_message=V2, tasks=render(2), on_top_of=PriorHistory(data, UPDATE))
    _, plain_objects = read_bundle(plain)
    _, update_objects = read_bundle(updated)
    main_tree = commit_links(plain_objects[bytes.fromhex(merges.main_sha)][1])[0]
    assert commit_links(update_objects[bytes.fromhex(update.main_sha)][1]) == (
        main_tree,
        [bytes.fromhex(update.base_sha or "")],
    )
    (tmp_path / "u.bundle").write_bytes(updated)
    assert worktree(clone(tmp_path / "u.bundle", tmp_path / "clone")) == merged(2)


def test_updates_chain(tmp_path):
    v1, _, v2, v2_path = v1_and_v2(tmp_path)
    v3, data = history_bundle(
        base_message=V3, tasks=render(3), on_top_of=PriorHistory(v2_path.read_bytes(), "Update to 3.0.0\n")
    )
    (tmp_path / "v3.bundle").write_bytes(data)
    repo = clone(tmp_path / "v3.bundle", tmp_path / "clone")
    chain = git(repo, "log", "--first-parent", "--format=%H", "-3", "main").split()
    assert chain == [v3.main_sha, v2.main_sha, v1.main_sha] and v3.base_sha == v2.main_sha
    # The previous main's whole history is kept; v2's own task branches are not (v2's main
    # is one commit on v1's, so nothing reaches them), and nothing is left dangling.
    _, old = read_bundle(v2_path.read_bytes())
    _, new = read_bundle(data)
    assert reachable([("main", bytes.fromhex(v2.main_sha))], old) <= set(new)
    assert bytes.fromhex(v2.task_shas[branch_name(1, "core")]) not in new
    assert git(repo, "cat-file", "-t", v1.task_shas[branch_name(1, "core")]).strip() == "commit"
    fsck = run(repo, "fsck", "--strict", "--full")
    assert fsck.returncode == 0 and "dangling" not in fsck.stdout + fsck.stderr, fsck.stdout + fsck.stderr


def test_a_previous_history_without_main_is_refused():
    _, data = history_bundle(base_message=V1, tasks=render(1))
    refs, objects = read_bundle(data)
    no_main = bundle([(name, oid) for name, oid in refs if name != "refs/heads/main"], objects)
    with pytest.raises(EngineError, match="refs/heads/main"):
        history_bundle(base_message=V2, tasks=render(2), on_top_of=PriorHistory(no_main, UPDATE))
    with pytest.raises(EngineError):
        history_bundle(base_message=V2, tasks=render(2), on_top_of=PriorHistory(data[:-5], UPDATE))
