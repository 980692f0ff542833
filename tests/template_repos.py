"""Template repositories for the tests: real git repositories in a temporary directory,
committed to and tagged with the git CLI, as an operator's would be."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

IDENTITY = ["-c", "user.name=Template Author", "-c", "user.email=author@example.test", "-c", "commit.gpgsign=false"]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *IDENTITY, *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def new_repo(repo: Path) -> Path:
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    return repo


def commit(repo: Path, message: str, *, tag: str | None = None, annotated: bool = False) -> str:
    """Commit everything in the work tree; return the commit id."""
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    if tag:
        git(repo, "tag", *(["-a", "-m", tag] if annotated else []), tag)
    return git(repo, "rev-parse", "HEAD")


def copy_tree(source: Path, repo: Path) -> None:
    """Replace the work tree's files (not .git) with ``source``'s."""
    for child in repo.iterdir():
        if child.name != ".git":
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    shutil.copytree(source, repo, dirs_exist_ok=True, symlinks=True)
