"""The artifact store on S3-compatible object storage (AWS S3, MinIO, Cloudflare R2), with
boto3. Keys go under the prefix of ``FORGEFLOW_ARTIFACTS_URL``; credentials come from boto3's
own chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, a profile, an instance role).

Every failure to reach the store (or a refusal by it) is an ``ArtifactStoreUnavailable``
naming the store and its endpoint; a missing object is a ``FileNotFoundError``, as for the
local store. boto3 retries little and waits briefly: Temporal retries the activity, and an
API request answers 503 rather than hang."""

from __future__ import annotations

import base64
import hashlib
import io
import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from store.artifact_cache import ArtifactCache
from store.artifacts import (
    ArtifactStoreUnavailable,
    ObjectRead,
    S3Location,
    StoredArtifact,
    check_key,
    sha256_file,
)

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")
CHUNK_BYTES = 1 << 20
# Larger objects go up in parts, several at once; smaller ones in one PUT that the server
# checks against our sha256 (a multipart upload has no whole-object SHA-256 to check).
MULTIPART_BYTES = 64 << 20
TRANSFER = TransferConfig(multipart_threshold=MULTIPART_BYTES, multipart_chunksize=16 << 20, max_concurrency=4)
NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404"})


def client_config(*, pool: int) -> Config:
    """Bounded waits and one retry: a store that is down shows within seconds, as a retried
    activity or a 503, instead of behind minutes of boto3's own backoff."""
    return Config(
        connect_timeout=3,
        read_timeout=20,
        retries={"mode": "standard", "total_max_attempts": 2},
        max_pool_connections=pool,
        # SigV4 everywhere (R2 knows no other, presigned URLs included).
        signature_version="s3v4",
        # Only the checksums an operation requires: S3-compatible servers differ in which of
        # the newer ones they accept. Puts carry our own SHA-256 instead.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def make_client(*, endpoint_url: str | None, region: str | None, pool: int = 32) -> S3Client:
    """A client of its own session (sessions are not thread-safe; clients are). Without an
    endpoint, boto3 looks up AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL itself; a custom
    endpoint gets path-style URLs (bucket in the path), which MinIO and R2 expect."""
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=endpoint_url, region_name=region, config=client_config(pool=pool))


class S3ArtifactStore:
    # Keys listed (and deleted) per request by delete_prefix: S3's maximum for both.
    page_size = 1000

    def __init__(self, location: S3Location, *, client: S3Client, cache: ArtifactCache) -> None:
        self.location = location
        self._client = client
        self._cache = cache
        self.endpoint = client.meta.endpoint_url
        self.name = f"artifact store {location.url} at {self.endpoint}"

    def unavailable(self, action: str, key: str, reason: str) -> ArtifactStoreUnavailable:
        return ArtifactStoreUnavailable(f"{self.name}: cannot {action} {key!r}: {reason}")

    # Raised ``from None``: the message says what botocore said, and without botocore's chain
    # of exceptions (and their stack traces) the failure stays under the few KiB the Temporal
    # server keeps as a pending activity's last failure. Larger, the Web UI would show only
    # "Failure exceeds size limit." where it should say the run waits for the store.
    def _call(self, action: str, key: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except ClientError as exc:
            error: dict[str, Any] = dict(exc.response.get("Error") or {})
            code = str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?"))
            if code in NOT_FOUND:
                raise FileNotFoundError(f"{self.name}: no object {key!r}") from None
            # The code and message only: the rest of an error body may echo request details.
            raise self.unavailable(action, key, f"{code}: {error.get('Message') or 'no message'}") from None
        except (BotoCoreError, Boto3Error) as exc:  # unreachable, timed out, no credentials, a failed part...
            raise self.unavailable(action, key, str(exc)) from None

    # Writes

    def put_bytes(self, key: str, data: bytes) -> StoredArtifact:
        digest = hashlib.sha256(data).digest()
        self._upload(key, io.BytesIO(data), size=len(data), digest=digest)
        return StoredArtifact(key=key, sha256=digest.hex(), size=len(data))

    def put_file(self, key: str, source: Path) -> StoredArtifact:
        check_key(key)
        sha256 = sha256_file(source)
        size = source.stat().st_size
        with source.open("rb") as fh:
            self._upload(key, fh, size=size, digest=bytes.fromhex(sha256))
        return StoredArtifact(key=key, sha256=sha256, size=size)

    def _upload(self, key: str, body: BinaryIO, *, size: int, digest: bytes) -> None:
        # A PUT (or a completed multipart upload) makes the whole object visible at once.
        name = self.location.key(key)
        extra: dict[str, Any] = {
            "ContentType": mimetypes.guess_type(key)[0] or "application/octet-stream",
            "Metadata": {"sha256": digest.hex()},
        }
        bucket = self.location.bucket
        if size <= MULTIPART_BYTES:
            checksum = base64.b64encode(digest).decode()
            self._call(
                "write",
                key,
                lambda: self._client.put_object(Bucket=bucket, Key=name, Body=body, ChecksumSHA256=checksum, **extra),
            )
        else:
            self._call(
                "write", key, lambda: self._client.upload_fileobj(body, bucket, name, ExtraArgs=extra, Config=TRANSFER)
            )

    def delete_prefix(self, prefix: str) -> None:
        """Every object under ``prefix/``, a page of keys per request."""
        base = self.location.key(prefix) + "/"
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.location.bucket, Prefix=base, PaginationConfig={"PageSize": self.page_size}
        )

        def delete_all() -> None:
            for page in pages:
                objects: Any = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if not objects:
                    continue
                done = self._client.delete_objects(
                    Bucket=self.location.bucket, Delete={"Objects": objects, "Quiet": True}
                )
                for error in done.get("Errors", [])[:1]:
                    raise ArtifactStoreUnavailable(
                        f"{self.name}: cannot delete {error.get('Key')!r}: {error.get('Code')}"
                    )

        self._call("delete under", prefix, delete_all)

    # Reads

    def read(self, key: str, *, start: int | None = None, end: int | None = None) -> ObjectRead:
        options: dict[str, Any] = {}
        if start is not None or end is not None:
            options["Range"] = f"bytes={start or 0}-{'' if end is None else end - 1}"
        name = self.location.key(key)
        got = self._call("read", key, lambda: self._client.get_object(Bucket=self.location.bucket, Key=name, **options))
        body = io.BufferedReader(_Body(got["Body"], lambda exc: self.unavailable("read", key, str(exc))), CHUNK_BYTES)
        return ObjectRead(body=body, size=got["ContentLength"], last_modified=got.get("LastModified"))

    def open(self, key: str) -> BinaryIO:
        return self.read(key).body

    def open_seekable(self, key: str, sha256: str | None) -> BinaryIO:
        check_key(key)
        return self._cache.open(sha256=sha256, fetch=lambda: self.open(key))

    def get_file(self, key: str, dest: Path) -> None:
        with self.open(key) as source, dest.open("wb") as out:
            while chunk := source.read(CHUNK_BYTES):
                out.write(chunk)

    def exists(self, key: str) -> bool:
        name = self.location.key(key)
        try:
            self._call("look up", key, lambda: self._client.head_object(Bucket=self.location.bucket, Key=name))
            return True
        except FileNotFoundError:
            pass
        # A HEAD's 404 has no body to tell a missing object from a missing bucket.
        try:
            self._call("look up", key, lambda: self._client.head_bucket(Bucket=self.location.bucket))
        except FileNotFoundError:
            raise self.unavailable("look up", key, "NoSuchBucket: the bucket does not exist") from None
        return False

    def presigned_url(self, key: str, *, seconds: int, filename: str, media_type: str) -> str:
        """A GET anyone holding it may make for ``seconds``; the response names the file as
        the API's own download does. Signed locally: no request to the store."""
        params = {
            "Bucket": self.location.bucket,
            "Key": self.location.key(key),
            "ResponseContentDisposition": f'attachment; filename="{filename}"',
            "ResponseContentType": media_type,
        }
        return self._call(
            "sign a URL for",
            key,
            lambda: self._client.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds),
        )


class _Body(io.RawIOBase):
    """An object's streaming body whose read failures (the store went away mid-read) are
    ArtifactStoreUnavailable too."""

    def __init__(self, stream: StreamingBody, fail: Callable[[Exception], Exception]) -> None:
        super().__init__()
        self._stream = stream
        self._fail = fail

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._stream.read(len(buffer))
        except BotoCoreError as exc:
            raise self._fail(exc) from None  # as in S3ArtifactStore._call
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()
