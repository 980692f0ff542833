"""Deterministic ZIPs: the same files give the same bytes, whoever builds them, whenever."""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from engine import EngineError
from engine.render import files_under

FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
MAX_FILES = 20_000
MAX_TOTAL_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class ArchiveResult:
    path: Path
    sha256: str
    size: int
    files: int


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_zip(source: Path, dest: Path, *, root_name: str) -> ArchiveResult:
    """Zip every file below ``source`` under ``root_name/``: sorted entries, a fixed
    timestamp, modes normalised to 0644/0755, no directories, no symlinks."""
    if "/" in root_name or root_name in ("", ".", ".."):
        raise EngineError(f"invalid archive root {root_name!r}")
    files = files_under(source)
    if len(files) > MAX_FILES:
        raise EngineError(f"the project has {len(files)} files; the cap is {MAX_FILES}")
    total = sum((source / rel).stat().st_size for rel in files)
    if total > MAX_TOTAL_BYTES:
        raise EngineError(f"the project has {total} bytes; the cap is {MAX_TOTAL_BYTES}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for rel in files:
            path = source / rel
            executable = os.stat(path).st_mode & stat.S_IXUSR
            info = zipfile.ZipInfo(f"{root_name}/{rel}", date_time=FIXED_DATE_TIME)
            info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
            info.create_system = 3  # Unix, so the mode bits are honoured on extraction
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes(), compresslevel=9)
    return ArchiveResult(path=dest, sha256=file_digest(dest), size=dest.stat().st_size, files=len(files))
