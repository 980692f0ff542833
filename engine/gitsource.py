"""Reading template repositories with the git CLI: their refs (``ls-remote``) and one
commit's files (a shallow fetch into a fresh repository, then a checkout).

Every call has a fixed argv with ``--`` before the URL and commit ids, URLs that only an
operator registers, and configuration that makes a hostile repository inert: only the
file, git, http(s) and ssh transports (no ``ext::``), no hooks, no submodules, no
prompts; and the checkout's bytes depend on nothing but the commit (no line-ending
conversion of the worker's config)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

LS_REMOTE_TIMEOUT = 30.0
FETCH_TIMEOUT = 300.0
PROTOCOLS = ("file", "git", "http", "https", "ssh")
CONFIG = [
    "protocol.allow=never",
    *(f"protocol.{name}.allow=always" for name in PROTOCOLS),
    "core.hooksPath=/dev/null",
    "core.autocrlf=false",
    "core.symlinks=true",
    "core.fsmonitor=false",
    "submodule.recurse=false",
    "fetch.recurseSubmodules=false",
    "advice.detachedHead=false",
    "init.defaultBranch=main",
]
# The worker's environment reaches git without its GIT_* variables (GIT_DIR and friends
# would point git elsewhere), but with those that say how to reach servers.
PASSED_GIT_VARIABLES = ("GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSL_CAINFO", "GIT_PROXY_COMMAND", "GIT_CONFIG_GLOBAL")
# What git says when a fetch names a commit the server does not have.
MISSING_MARKERS = ("not our ref", "couldn't find remote ref", "no such remote ref", "unadvertised object")


class GitError(Exception):
    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing  # the repository answered: it has no such commit


@dataclass(frozen=True)
class RemoteRefs:
    head: str | None = None  # the commit of the default branch
    default_branch: str | None = None
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit
    tags: dict[str, str] = field(default_factory=dict)  # name -> commit (annotated tags peeled)

    def commit_of(self, ref: str) -> str | None:
        """As git resolves a short name: a tag before a branch; ``HEAD``; or a full refname."""
        if ref == "HEAD":
            return self.head
        if ref.startswith("refs/tags/"):
            return self.tags.get(ref.removeprefix("refs/tags/"))
        if ref.startswith("refs/heads/"):
            return self.branches.get(ref.removeprefix("refs/heads/"))
        return self.tags.get(ref) or self.branches.get(ref)


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in PASSED_GIT_VARIABLES}
    env["GIT_TERMINAL_PROMPT"] = "0"  # a server asking for a password fails instead of waiting
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    env["LC_ALL"] = "C"  # messages as MISSING_MARKERS expects them
    return env


def git(args: list[str], *, cwd: Path | None = None, timeout: float) -> str:
    argv = ["git"]
    for setting in CONFIG:
        argv += ["-c", setting]
    try:
        proc = subprocess.run(
            [*argv, *args],
            cwd=cwd,
            env=_environment(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"git {args[0]} timed out after {timeout:g} s") from exc
    except OSError as exc:
        raise GitError(f"git cannot run: {exc}") from exc
    if proc.returncode != 0:
        said = proc.stderr.decode("utf-8", "replace").strip()
        last = [line for line in said.splitlines() if line.strip()][-3:]
        message = "; ".join(last) or f"exit status {proc.returncode}"
        raise GitError(message, missing=any(marker in said for marker in MISSING_MARKERS))
    return proc.stdout.decode("utf-8", "replace")


def ls_remote(url: str) -> RemoteRefs:
    out = git(["ls-remote", "--symref", "--", url], timeout=LS_REMOTE_TIMEOUT)
    head = default = None
    branches: dict[str, str] = {}
    tags: dict[str, str] = {}
    for line in out.splitlines():
        value, _, name = line.partition("\t")
        if value.startswith("ref: "):
            if name == "HEAD":
                default = value.removeprefix("ref: ").removeprefix("refs/heads/")
        elif name == "HEAD":
            head = value
        elif name.startswith("refs/heads/"):
            branches[name.removeprefix("refs/heads/")] = value
        elif name.startswith("refs/tags/"):
            tag = name.removeprefix("refs/tags/")
            if tag.endswith("^{}"):
                tags[tag.removesuffix("^{}")] = value  # the commit an annotated tag points at
            else:
                tags.setdefault(tag, value)
    return RemoteRefs(head=head, default_branch=default, branches=branches, tags=tags)


def materialise(url: str, commit: str, cache_dir: Path, *, ref: str | None, verify: Callable[[Path], None]) -> Path:
    """``<cache_dir>/<commit>``: the commit's files, without ``.git``. Made in a private
    directory beside it and renamed into place once complete and verified, so a reader
    never sees half a checkout and two makers never clash; never changed afterwards."""
    target = cache_dir / commit
    if target.is_dir():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".tmp-") as tmp:
        work = Path(tmp) / "tree"
        git(["init", "-q", "--template=", str(work)], timeout=LS_REMOTE_TIMEOUT)
        try:
            git(["fetch", "-q", "--depth=1", "--no-tags", "--", url, commit], cwd=work, timeout=FETCH_TIMEOUT)
        except GitError:
            # Some servers refuse a commit id that no ref advertises: fetch the ref it came
            # from and check that it (still) points there.
            if not ref or ref == commit:
                raise
            git(["fetch", "-q", "--depth=1", "--no-tags", "--", url, ref], cwd=work, timeout=FETCH_TIMEOUT)
        fetched = git(["rev-parse", "--verify", "FETCH_HEAD^{commit}"], cwd=work, timeout=LS_REMOTE_TIMEOUT).strip()
        if fetched != commit:
            raise GitError(f"{ref} is now {fetched}, not {commit}", missing=True)
        git(["checkout", "-q", "--detach", commit], cwd=work, timeout=FETCH_TIMEOUT)
        shutil.rmtree(work / ".git")
        verify(work)
        try:
            os.rename(work, target)
        except OSError:
            if not target.is_dir():  # else another process published the same commit first
                raise
    return target
