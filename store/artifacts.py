"""Artifact storage behind a small interface: a directory by default; an S3-compatible
store implements the same four calls. Workflows only ever see keys."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol


class InvalidArtifactKey(ValueError):
    pass


@dataclass(frozen=True)
class StoredArtifact:
    key: str
    sha256: str
    size: int


class ArtifactStore(Protocol):
    def put_file(self, key: str, source: Path) -> StoredArtifact: ...
    def put_bytes(self, key: str, data: bytes) -> StoredArtifact: ...
    def get_file(self, key: str, dest: Path) -> None: ...
    def open(self, key: str) -> BinaryIO: ...
    def exists(self, key: str) -> bool: ...
    def delete_prefix(self, prefix: str) -> None: ...


def check_key(key: str) -> PurePosixPath:
    path = PurePosixPath(key)
    if not key or path.is_absolute() or any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidArtifactKey(f"invalid artifact key {key!r}")
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class LocalArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path_for(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).parts)

    def _replace(self, key: str, write: Callable[[BinaryIO], object]) -> Path:
        target = self.path_for(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the target, then rename: readers never see half a file, and a
        # retried activity simply replaces it with identical bytes.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def put_file(self, key: str, source: Path) -> StoredArtifact:
        def copy(out: BinaryIO) -> None:
            with source.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)

        target = self._replace(key, copy)
        return StoredArtifact(key=key, sha256=sha256_file(target), size=target.stat().st_size)

    def put_bytes(self, key: str, data: bytes) -> StoredArtifact:
        self._replace(key, lambda out: out.write(data))
        return StoredArtifact(key=key, sha256=hashlib.sha256(data).hexdigest(), size=len(data))

    def get_file(self, key: str, dest: Path) -> None:
        shutil.copyfile(self.path_for(key), dest)

    def open(self, key: str) -> BinaryIO:
        return self.path_for(key).open("rb")

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self.path_for(prefix), ignore_errors=True)
