"""Scratch directories held by the process using them, so that what a killed process left
behind (``kill -9``, the machine's OOM killer: no ``finally`` runs) can be told from what a
live one is still using, by any process that shares the parent directory.

A held directory has a lock file, ``LOCK``, on which its process keeps an exclusive
``flock`` for as long as it uses it; the kernel drops the lock when the process dies,
however it dies. :func:`sweep` removes the directories whose lock it can take. The lock file
is made and locked under another name and only then renamed to ``LOCK``, so a sweep never
finds one that is not yet held. Directories without ``LOCK`` (an older forgeflow's, or one
whose process died within the microseconds between making it and locking it) are left
alone: a sweep cannot tell whether anyone still uses them."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("forgeflow.scratch")

LOCK = ".ff-held"
_TAKING = ".ff-taking"


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


@contextmanager
def held_dir(prefix: str, parent: Path | None = None, *, remove: Callable[[Path], object] = _rmtree) -> Iterator[Path]:
    """A new directory ``parent/<prefix>XXXXXXXX`` (0700; the system's temporary directory
    by default), held by this process until the block ends; then released and handed to
    ``remove`` (by default deleted at once)."""
    path = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    fd = -1
    try:
        fd = os.open(path / _TAKING, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # nobody else knows this file yet: never waits
        os.rename(path / _TAKING, path / LOCK)
        yield path
    finally:
        if fd >= 0:
            os.close(fd)  # the lock goes with it: a sweep may now remove it as well
        remove(path)


def sweep(parent: Path, prefix: str) -> list[Path]:
    """Remove every directory ``parent/<prefix>*`` of this user that has a ``LOCK`` no live
    process holds; the ones removed. Safe beside live holders in any process: a held lock
    is never taken, and the lock is kept while the directory is deleted."""
    try:
        entries = list(os.scandir(parent))
    except FileNotFoundError:
        return []
    removed: list[Path] = []
    for entry in entries:
        try:
            if not entry.name.startswith(prefix) or not entry.is_dir(follow_symlinks=False):
                continue
            if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue  # another user's (/tmp is everyone's): not ours to judge
            fd = os.open(os.path.join(entry.path, LOCK), os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:  # gone meanwhile, no lock (yet), or not a plain file
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: its process is alive
            os.close(fd)
            continue
        try:
            shutil.rmtree(entry.path, ignore_errors=True)
        finally:
            os.close(fd)
        removed.append(Path(entry.path))
    if removed:
        log.info("removed %d directories left by processes that died: %s", len(removed), ", ".join(map(str, removed)))
    return removed
