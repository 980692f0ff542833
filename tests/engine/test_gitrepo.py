"""Task commits and the run's history, in real git."""

from __future__ import annotations

import os
import subprocess

from engine.gitrepo import TaskCommit, branch_name, task_commit_sha
from engine.tree import FileData, read_tree, write_tree
from tests.engine.gitref import build_history, commit_task, tree_files


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


TRICKY = {
    # git sorts a directory as if its name ended in "/": "a-b" < "a.b" < "a/" < "a0"
    "a.b": "dot\n",
    "a-b": "dash\n",
    "a/x.py": "print('x')\n",
    "a/deeper/empty.txt": "",
    "a0": "zero\n",
    "a/b/c/d.txt": "deep\n",
    "A": "upper\n",
    "run.sh": "#!/bin/sh\n",
    "bin/tool": "#!/bin/sh\n",
    "naïve/ünïcode.txt": "é\n",
    "with space.txt": "s\n",
    ".hidden/.keep": "",
    '"quoted" name': "fast-import needs this one quoted\n",
    "back\\slash": "b\n",
}


def test_the_in_process_commit_id_is_the_one_git_makes(tmp_path):
    files = tree(tmp_path / "files", TRICKY)
    for rel in ("run.sh", "bin/tool"):
        os.chmod(files / rel, 0o755)
    message = "Task 7: tricky\n\nNested dirs, names that sort oddly, executables, empty files.\n"
    task = TaskCommit(branch_name(7, "tricky"), message, files)
    real = commit_task(tmp_path / "repo", base_message="Start from template t 1.0.0 (abc)", task=task)
    in_memory = TaskCommit(task.branch, message, read_tree(files))
    assert task_commit_sha(base_message="Start from template t 1.0.0 (abc)", task=in_memory) == real
    assert task_commit_sha(base_message="Start from template t 1.0.0 (abc)", task=task) == real
    listed = git(tmp_path / "repo", "ls-tree", "-r", task.branch)
    assert listed.count("100755") == 2 and "a/deeper/empty.txt" in listed


def test_an_empty_task_and_a_message_without_newline_match_git(tmp_path):
    (tmp_path / "none").mkdir()
    task = TaskCommit(branch_name(1, "empty"), "no trailing newline", tmp_path / "none")
    real = commit_task(tmp_path / "repo", base_message="start\n", task=task)
    assert task_commit_sha(base_message="start\n", task=TaskCommit(task.branch, task.message, {})) == real


def test_history_from_memory_holds_the_in_process_commits(tmp_path):
    core = {"README.md": FileData(b"hi\n"), "a.b": FileData(b""), "a/b.sh": FileData(b"#!/bin/sh\n", 0o755)}
    blog = {"blog/models.py": FileData(b"\n"), "blog-x/y": FileData(b"y")}
    tasks = [TaskCommit("feat/task-001-core", "core\n", core), TaskCommit("feat/task-002-blog", "blog\n", blog)]
    final = {**core, **blog, "GENERATED.txt": FileData(b"made by a hook\n")}
    history = build_history(tmp_path / "repo", base_message="start", tasks=tasks, final_tree=final)
    for task in tasks:
        assert history.task_shas[task.branch] == task_commit_sha(base_message="start", task=task)
    assert tree_files(tmp_path / "repo") == sorted(final)
    # A directory root gives the same history as the same files in memory.
    on_disk = [TaskCommit(t.branch, t.message, _written(tmp_path / t.branch, t.root)) for t in tasks]
    again = build_history(
        tmp_path / "repo2", base_message="start", tasks=on_disk, final_tree=_written(tmp_path / "f", final)
    )
    assert again == history


def _written(root, files):
    write_tree(files, root)
    return root
