"""The ZIP with ``.git``: made from a run's bundle without git, it is a repository real git
reads (fsck, log, a clean status) and the same inputs give the same bytes."""

from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path

from engine.archive import zip_bytes
from engine.gitdir import zip_with_git
from engine.gitrepo import TaskCommit, history_bundle
from engine.tree import FileData


def extract(data: bytes, dest: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            target = dest / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
            target.chmod((info.external_attr >> 16) & 0o777)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def test_the_zip_with_git_is_the_runs_repository(tmp_path: Path) -> None:
    core = {"app.py": FileData(b"print('hi')\n"), "bin/run": FileData(b"#!/bin/sh\necho run\n", 0o755)}
    docs = {"docs/index.md": FileData(b"# Docs\n" * 5000)}  # larger than one inflater chunk
    history, bundle = history_bundle(
        base_message="Start",
        tasks=[TaskCommit("feat/task-001-core", "core\n", core), TaskCommit("feat/task-002-docs", "docs\n", docs)],
    )
    archive = zip_bytes({**core, **docs, ".forgeflow/answers.json": FileData(b"{}\n")}, root_name="proj")
    first = zip_with_git(archive, bundle)
    assert zip_with_git(archive, bundle) == first  # deterministic
    extract(first, tmp_path)
    repo = tmp_path / "proj"
    assert git(repo, "rev-parse", "HEAD").strip() == history.main_sha
    assert git(repo, "status", "--porcelain") == ""  # .forgeflow/ is excluded, the files match
    git(repo, "fsck", "--full", "--strict")
    assert "Merge branch 'feat/task-002-docs'" in git(repo, "log", "--format=%s")
    assert sorted(git(repo, "branch", "--format=%(refname:short)").split()) == [
        "feat/task-001-core",
        "feat/task-002-docs",
        "main",
    ]
