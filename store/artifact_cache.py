"""Local copies of remote artifacts, for readers that need a seekable file (the API lists
and reads ZIP members: a ZIP's directory is at its end). Content-addressed: a copy is named
by the sha256 on record, so it never goes stale and API processes sharing the directory
share the copies. Fetched once, checked against that sha256, renamed into place whole;
the least recently used are deleted past a size bound."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

from store.artifacts import ArtifactChecksumMismatch

SHA256 = re.compile(r"[0-9a-f]{64}")
CHUNK_BYTES = 1 << 20
TMP_PREFIX = ".tmp-"
# A temporary file this old belongs to a fetch that died with its process.
STALE_TMP_SECONDS = 3600


class ArtifactCache:
    def __init__(self, root: Path, *, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def open(self, *, sha256: str | None, fetch: Callable[[], BinaryIO]) -> BinaryIO:
        """The copy with this sha256, fetched through ``fetch`` (a readable stream of the
        object) if there is none yet. Without a sha256 on record nothing can name a copy:
        the bytes go to an anonymous temporary file instead."""
        self.root.mkdir(parents=True, exist_ok=True)
        if sha256 is None or not SHA256.fullmatch(sha256):
            anonymous = tempfile.TemporaryFile(dir=self.root)  # noqa: SIM115 (returned open, to the caller)
            try:
                _copy(fetch, anonymous)
                anonymous.seek(0)
            except BaseException:
                anonymous.close()
                raise
            return anonymous
        path = self.root / sha256[:2] / sha256
        try:
            found = path.open("rb")
        except FileNotFoundError:
            return self._fill(path, sha256, fetch)
        with suppress(OSError):
            os.utime(path)  # recently used: evicted last
        return found

    def _fill(self, path: Path, sha256: str, fetch: Callable[[], BinaryIO]) -> BinaryIO:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as out:
                digest = _copy(fetch, out)
            if digest != sha256:
                raise ArtifactChecksumMismatch(f"fetched bytes have sha256 {digest}, not {sha256} as on record")
            # Two readers fetching at once both rename identical bytes into place.
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        # Opened before evicting: an open file stays readable even if it is evicted itself
        # (a bound smaller than one object), and so does one another reader holds.
        copy = path.open("rb")
        self.evict()
        return copy

    def evict(self) -> None:
        """Delete the least recently used copies until the rest fit in ``max_bytes``."""
        now = time.time()
        copies: list[tuple[float, int, Path]] = []
        for entry in self.root.glob("*/*"):
            try:
                stat = entry.stat()
            except FileNotFoundError:
                continue  # evicted by another process meanwhile
            if entry.name.startswith(TMP_PREFIX):
                if now - stat.st_mtime > STALE_TMP_SECONDS:
                    entry.unlink(missing_ok=True)
                continue
            copies.append((stat.st_mtime, stat.st_size, entry))
        total = sum(size for _, size, _ in copies)
        for _, size, entry in sorted(copies):
            if total <= self.max_bytes:
                break
            entry.unlink(missing_ok=True)
            total -= size


def _copy(fetch: Callable[[], BinaryIO], out: BinaryIO) -> str:
    digest = hashlib.sha256()
    with fetch() as source:
        while chunk := source.read(CHUNK_BYTES):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()
