"""Artifact storage behind a small interface: a directory by default
(``LocalArtifactStore``), or an S3-compatible bucket (``store.artifacts_s3``) when
``FORGEFLOW_ARTIFACTS_URL`` says ``s3://bucket[/prefix]``; ``store.artifact_stores`` picks one.
Workflows only ever see keys.

Nothing is half-written: a store makes an object visible whole or not at all (a rename here,
a completed PUT there), and the activities write their objects before the status write that
references them is stored (the projection activity, afterwards, stores only the key, the
sha256 and the size the put returned). A key in the database always names a whole object."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol, runtime_checkable


class InvalidArtifactKey(ValueError):
    pass


class ArtifactStoreUnavailable(Exception):
    """The store cannot be reached or refuses service now (network, timeouts, 5xx, a missing
    bucket, missing or refused credentials): worth retrying later. The message names the
    store and its endpoint, never credentials. The API answers 503 retryable_error; in an
    activity it is an ordinary retryable failure, so the run waits for the store."""


class ArtifactChecksumMismatch(Exception):
    """An object's bytes do not have the sha256 the database recorded for them."""


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

    def open_seekable(self, key: str, sha256: str | None) -> BinaryIO:
        """The object as a seekable local file (the API reads ZIP members from it); closing
        it is the caller's. ``sha256`` is the digest on record: a remote store keeps copies
        by it and checks what it fetched against it."""
        ...


@dataclass(frozen=True)
class ObjectRead:
    """Bytes of a remote object being read: ``size`` of them, from ``body``."""

    body: BinaryIO
    size: int
    last_modified: datetime | None


@runtime_checkable
class RemoteArtifactStore(ArtifactStore, Protocol):
    """A store whose objects are served from elsewhere: read in byte ranges, or fetched by
    the client itself from a presigned URL."""

    def read(self, key: str, *, start: int | None = None, end: int | None = None) -> ObjectRead:
        """Bytes ``start`` up to ``end`` (exclusive) of the object; all of it by default."""
        ...

    def presigned_url(self, key: str, *, seconds: int, filename: str, media_type: str) -> str: ...


def check_key(key: str) -> PurePosixPath:
    path = PurePosixPath(key)
    if not key or path.is_absolute() or any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidArtifactKey(f"invalid artifact key {key!r}")
    return path


# S3's bucket naming rules (AWS, MinIO and R2 share them): 3-63 lowercase letters, digits,
# dots and hyphens, a letter or digit at each end.
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or "a/b", without slashes at either end

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key(self, key: str) -> str:
        """The object key of an artifact key: checked, then placed under the prefix."""
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key


def parse_s3_url(url: str) -> S3Location:
    """``s3://bucket[/prefix]``, or a ValueError saying what is wrong."""
    scheme, sep, rest = url.partition("://")
    if scheme != "s3" or not sep:
        raise ValueError("must look like s3://bucket or s3://bucket/prefix")
    bucket, _, prefix = rest.partition("/")
    if "@" in bucket or ":" in bucket:
        raise ValueError("takes no credentials or port: credentials come from AWS_ACCESS_KEY_ID and the rest")
    if not BUCKET_NAME.fullmatch(bucket):
        raise ValueError(f"bucket name {bucket!r} is not a valid S3 bucket name (3-63 of a-z 0-9 . -)")
    prefix = prefix.strip("/")
    if prefix:
        try:
            check_key(prefix)
        except InvalidArtifactKey:
            raise ValueError(f"prefix {prefix!r} has an empty, '.' or '..' segment") from None
    return S3Location(bucket=bucket, prefix=prefix)


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

    def open_seekable(self, key: str, sha256: str | None) -> BinaryIO:
        return self.open(key)  # the file itself: already local and seekable

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self.path_for(prefix), ignore_errors=True)
