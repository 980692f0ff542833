"""What only the S3 store does: its settings, where objects go, uploads in parts, errors that
name the store (never its credentials), and the local copies the API reads ZIPs from."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from boto3.s3.transfer import TransferConfig
from pydantic import ValidationError

import store.artifacts_s3 as artifacts_s3
from forgeflow.ports import free_port
from forgeflow.settings import Settings
from store.artifact_cache import ArtifactCache
from store.artifact_stores import open_artifact_store
from store.artifacts import (
    ArtifactChecksumMismatch,
    ArtifactStoreUnavailable,
    LocalArtifactStore,
    parse_s3_url,
)
from store.artifacts_s3 import S3ArtifactStore, make_client
from tests.s3server import TEST_CREDENTIALS, ClosableProxy, S3Bucket, object_keys

SECRET = TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]


def s3_store(bucket: S3Bucket, tmp_path: Path, *, endpoint: str | None = None, cache_bytes: int = 1 << 30):
    client = make_client(endpoint_url=endpoint or bucket.endpoint, region=None)
    cache = ArtifactCache(tmp_path / "cache", max_bytes=cache_bytes)
    return S3ArtifactStore(parse_s3_url(bucket.url), client=client, cache=cache)


def test_settings_choose_the_store(tmp_path, s3_bucket):
    assert isinstance(open_artifact_store(Settings(data_dir=tmp_path)), LocalArtifactStore)
    settings = Settings(data_dir=tmp_path, artifacts_url=s3_bucket.url + "/", artifacts_endpoint_url=s3_bucket.endpoint)
    store = open_artifact_store(settings)
    assert isinstance(store, S3ArtifactStore) and store.location.url == s3_bucket.url
    assert store.name == f"artifact store {s3_bucket.url} at {s3_bucket.endpoint}"


def test_the_endpoint_may_come_from_boto3s_own_variables(tmp_path, s3_bucket, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_bucket.endpoint)
    monkeypatch.setenv("FORGEFLOW_ARTIFACTS_URL", s3_bucket.url)
    store = open_artifact_store(Settings(data_dir=tmp_path))
    store.put_bytes("a.txt", b"via AWS_ENDPOINT_URL_S3")
    assert object_keys(s3_bucket) == ["forgeflow/a.txt"]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("bucket/prefix", "s3://bucket"),
        ("https://bucket.s3.amazonaws.com/x", "s3://bucket"),
        ("s3://Bad_Bucket", "not a valid S3 bucket name"),
        ("s3://ab", "not a valid S3 bucket name"),
        ("s3://key:secret@bucket/x", "credentials"),
        ("s3://bucket/a/../b", "prefix"),
    ],
)
def test_a_bad_artifacts_url_is_refused_clearly(value, says):
    with pytest.raises(ValidationError) as refused:
        Settings(artifacts_url=value)
    error = refused.value.errors()[0]
    assert error["loc"] == ("artifacts_url",) and says in error["msg"]


def test_other_artifact_settings_are_checked():
    with pytest.raises(ValidationError):
        Settings(artifacts_endpoint_url="127.0.0.1:9000")  # no scheme
    with pytest.raises(ValidationError):
        Settings(artifacts_presign_seconds=8 * 24 * 3600)  # SigV4 URLs last at most 7 days
    assert Settings(artifacts_url="").artifacts_url is None  # set but empty: the local default


def test_objects_go_under_the_prefix_with_their_sha256_checked_by_the_server(s3_bucket, tmp_path):
    store = s3_store(s3_bucket, tmp_path)
    sent: list = []
    store._client.meta.events.register("before-send.s3.PutObject", lambda request, **_: sent.append(request.headers))
    stored = store.put_bytes("projects/1/out.zip", b"zip bytes")
    assert object_keys(s3_bucket) == ["forgeflow/projects/1/out.zip"]
    head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key="forgeflow/projects/1/out.zip")
    assert head["Metadata"] == {"sha256": stored.sha256} and head["ContentType"] == "application/zip"
    # The server refuses the PUT unless the body it received has our SHA-256 (moto does not
    # check it; AWS, MinIO and R2 do).
    assert sent[0]["x-amz-checksum-sha256"] == b"W3onVLOJEw4TjVe6g/Hq5/BaQcZr7Kz6LdIGAUOuZts="


def test_large_objects_go_up_in_parts(s3_bucket, tmp_path, monkeypatch):
    monkeypatch.setattr(artifacts_s3, "MULTIPART_BYTES", 1 << 20)
    monkeypatch.setattr(
        artifacts_s3, "TRANSFER", TransferConfig(multipart_threshold=1 << 20, multipart_chunksize=5 << 20)
    )
    store = s3_store(s3_bucket, tmp_path)
    data = bytes(range(256)) * (12 << 12)  # 12 MiB: three parts of at most 5 MiB
    stored = store.put_bytes("big.zip", data)
    assert (stored.sha256, stored.size) == (hashlib.sha256(data).hexdigest(), len(data))
    head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key="forgeflow/big.zip")
    assert head["ETag"].endswith('-3"') and head["Metadata"] == {"sha256": stored.sha256}
    with store.open("big.zip") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == stored.sha256


def test_delete_prefix_goes_page_by_page(s3_bucket, tmp_path):
    store = s3_store(s3_bucket, tmp_path)
    store.page_size = 2
    for n in range(5):
        store.put_bytes(f"projects/3/runs/1/{n}.zip", b"x")
    store.put_bytes("projects/30/keep.zip", b"x")
    store.delete_prefix("projects/3")
    assert object_keys(s3_bucket) == ["forgeflow/projects/30/keep.zip"]


def test_an_unreachable_store_is_unavailable_naming_it_and_never_its_secret(s3_bucket, tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"
    store = s3_store(s3_bucket, tmp_path, endpoint=closed)
    started = time.monotonic()
    calls = {
        "write": lambda: store.put_bytes("projects/1/out.zip", b"x"),
        "read": lambda: store.open("projects/1/out.zip"),
        "look up": lambda: store.exists("projects/1/out.zip"),
        "delete under": lambda: store.delete_prefix("projects/1"),
    }
    for action, call in calls.items():
        with pytest.raises(ArtifactStoreUnavailable) as failed:
            call()
        message = str(failed.value)
        assert message.startswith(f"artifact store {s3_bucket.url} at {closed}: cannot {action} 'projects/1")
        assert "Could not connect" in message and SECRET not in message
    assert time.monotonic() - started < 15, "boto3's own retries and timeouts are kept short"


def test_an_upload_in_parts_to_an_unreachable_store_is_unavailable_too(s3_bucket, tmp_path, monkeypatch):
    monkeypatch.setattr(artifacts_s3, "MULTIPART_BYTES", 0)
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ArtifactStoreUnavailable, match=f"at {closed}: cannot write 'big.zip'"):
        s3_store(s3_bucket, tmp_path, endpoint=closed).put_bytes("big.zip", b"x" * 100)


def test_a_missing_bucket_is_unavailable_not_missing_objects(s3_bucket, tmp_path):
    store = S3ArtifactStore(
        parse_s3_url("s3://ff-test-no-such-bucket"),
        client=make_client(endpoint_url=s3_bucket.endpoint, region=None),
        cache=ArtifactCache(tmp_path, max_bytes=0),
    )
    for call in (lambda: store.put_bytes("a", b"x"), lambda: store.open("a"), lambda: store.exists("a")):
        with pytest.raises(ArtifactStoreUnavailable, match="NoSuchBucket"):
            call()


def test_local_copies_are_fetched_once_checked_and_evicted_past_the_bound(s3_bucket, tmp_path):
    proxy = ClosableProxy(int(s3_bucket.endpoint.rsplit(":", 1)[1]))
    proxy.open()
    try:
        store = s3_store(s3_bucket, tmp_path, endpoint=proxy.url, cache_bytes=25_000)
        stored = [store.put_bytes(f"p/{n}.zip", bytes([n]) * 10_000) for n in range(3)]
        for n, one in enumerate(stored):
            with store.open_seekable(one.key, one.sha256) as fh:
                assert fh.read() == bytes([n]) * 10_000
            time.sleep(0.01)  # distinct use times
        copies = sorted(p.name for p in (tmp_path / "cache").glob("*/*"))
        assert copies == sorted(s.sha256 for s in stored[1:]), "the least recently used copy went"
        proxy.close()  # the store is down: the copies still serve, a fetch cannot
        with store.open_seekable(stored[2].key, stored[2].sha256) as fh:
            assert fh.read() == bytes([2]) * 10_000
        with pytest.raises(ArtifactStoreUnavailable):
            store.open_seekable(stored[0].key, stored[0].sha256)
        proxy.open()
        with pytest.raises(ArtifactChecksumMismatch):
            store.open_seekable(stored[0].key, "0" * 64)
        assert not (tmp_path / "cache" / "00").exists() or not any((tmp_path / "cache" / "00").iterdir())
    finally:
        proxy.close()
