"""Task commits and the run's history, in real git."""

from __future__ import annotations

import os
import subprocess

from engine.gitrepo import TaskCommit, branch_name, build_history, commit_task, tree_files


def tree(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def test_a_task_commit_is_reproducible(tmp_path):
    files = tree(tmp_path / "files", {"billing/views.py": "x = 1\n", "billing/__init__.py": ""})
    os.chmod(files / "billing/views.py", 0o755)
    task = TaskCommit(branch_name(3, "billing"), "Task 3: billing", files)
    first = commit_task(tmp_path / "one", base_message="start", task=task)
    again = commit_task(tmp_path / "two", base_message="start", task=task)
    assert first == again and len(first) == 40
    assert task.branch == "feat/task-003-billing"
    assert git(tmp_path / "one", "ls-tree", "-r", task.branch).count("100755") == 1


def test_history_merges_task_branches_in_order_and_keeps_their_commits(tmp_path):
    core = TaskCommit("feat/task-001-core", "core", tree(tmp_path / "core", {"README.md": "hi\n"}))
    blog = TaskCommit("feat/task-002-blog", "blog", tree(tmp_path / "blog", {"blog/models.py": "\n"}))
    alone = commit_task(tmp_path / "alone", base_message="start", task=blog)
    history = build_history(tmp_path / "repo", base_message="start", tasks=[core, blog])
    assert history.task_shas["feat/task-002-blog"] == alone
    assert tree_files(tmp_path / "repo") == ["README.md", "blog/models.py"]
    subjects = git(tmp_path / "repo", "log", "--first-parent", "--format=%s", "main").splitlines()
    assert subjects == ["Merge branch 'feat/task-002-blog'", "Merge branch 'feat/task-001-core'", "start"]
    parents = git(tmp_path / "repo", "log", "-1", "--format=%P", "main").split()
    assert parents[1] == alone  # the merge's second parent is the task's own commit
