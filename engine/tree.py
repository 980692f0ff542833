"""A set of project files held in memory: what a task renders, what a bundle carries and
what git objects and ZIPs are made of. Creating small files costs far more than building
them (about 0.5 ms each on the workers' disks), so files touch the disk only where a
subprocess needs a directory."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from engine import PathScopeViolation


@dataclass(frozen=True)
class FileData:
    data: bytes
    mode: int = 0o644  # permission bits, as the template (or the bundle) had them

    @property
    def executable(self) -> bool:
        # Git and the ZIPs keep only this bit (100755 / 0755); everything else is 0644.
        return bool(self.mode & stat.S_IXUSR)


# A POSIX path relative to the project root -> the file.
Tree = Mapping[str, FileData]


def files_under(root: Path) -> list[str]:
    """Every regular file below ``root`` as a sorted POSIX relative path. Symlinks are
    refused, and so is anything else that is not a plain file or directory: a named pipe a
    hook (or an agent) leaves behind would block the reader forever."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            if os.path.islink(os.path.join(dirpath, name)):
                raise PathScopeViolation(f"symlink {name!r} in the output is not allowed")
        for name in filenames:
            if not stat.S_ISREG(os.lstat(os.path.join(dirpath, name)).st_mode):
                raise PathScopeViolation(f"{name!r} in the output is not a regular file")
        found.extend(Path(dirpath, name).relative_to(root).as_posix() for name in filenames)
    return sorted(found)


def read_tree(root: Path) -> dict[str, FileData]:
    tree: dict[str, FileData] = {}
    for rel in files_under(root):
        path = root / rel
        tree[rel] = FileData(path.read_bytes(), stat.S_IMODE(os.stat(path).st_mode))
    return tree


def write_tree(tree: Tree, root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    made: set[Path] = {root}
    for rel in sorted(tree):
        target = root / rel
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        target.write_bytes(tree[rel].data)
        target.chmod(tree[rel].mode)
