"""The artifact store contract, held by both stores alike: the local directory and S3 (a real
S3-compatible server, moto's, in a process on 127.0.0.1)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from forgeflow.settings import Settings
from store.artifact_stores import open_artifact_store
from store.artifacts import ArtifactStore, InvalidArtifactKey
from tests.s3server import S3Bucket

DATA = b"PK\x03\x04" + bytes(range(256)) * 64


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    settings = Settings(data_dir=tmp_path / "data")
    if request.param == "s3":
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        settings = settings.model_copy(update={"artifacts_url": bucket.url, "artifacts_endpoint_url": bucket.endpoint})
    return open_artifact_store(settings)


def test_put_returns_the_digest_and_size_and_reads_give_the_bytes_back(store, tmp_path):
    stored = store.put_bytes("projects/1/runs/1/out.zip", DATA)
    assert (stored.key, stored.sha256, stored.size) == (
        "projects/1/runs/1/out.zip",
        hashlib.sha256(DATA).hexdigest(),
        len(DATA),
    )
    with store.open("projects/1/runs/1/out.zip") as fh:
        assert fh.read() == DATA
    source = tmp_path / "source.bin"
    source.write_bytes(DATA[::-1])
    from_file = store.put_file("projects/1/runs/1/reversed.bin", source)
    assert (from_file.sha256, from_file.size) == (hashlib.sha256(DATA[::-1]).hexdigest(), len(DATA))
    store.get_file("projects/1/runs/1/reversed.bin", tmp_path / "copy.bin")
    assert (tmp_path / "copy.bin").read_bytes() == DATA[::-1]


def test_a_put_replaces_the_object_whole(store):
    store.put_bytes("a/b.txt", b"first version")
    store.put_bytes("a/b.txt", b"second")
    with store.open("a/b.txt") as fh:
        assert fh.read() == b"second"


def test_exists_and_missing_objects(store, tmp_path):
    assert not store.exists("nothing/here.zip")
    store.put_bytes("something/here.zip", b"x")
    assert store.exists("something/here.zip")
    with pytest.raises(FileNotFoundError):
        store.open("nothing/here.zip")
    with pytest.raises(FileNotFoundError):
        store.get_file("nothing/here.zip", tmp_path / "out")


def test_delete_prefix_deletes_what_is_under_it_only(store):
    for key in ("projects/1/a.zip", "projects/1/deep/b.zip", "projects/12/c.zip", "projects/1.zip"):
        store.put_bytes(key, b"x")
    store.delete_prefix("projects/1")
    assert [store.exists(k) for k in ("projects/1/a.zip", "projects/1/deep/b.zip")] == [False, False]
    assert store.exists("projects/12/c.zip") and store.exists("projects/1.zip")
    store.delete_prefix("projects/nothing")  # nothing there: nothing happens


def test_a_seekable_local_file_of_an_object(store):
    stored = store.put_bytes("projects/2/out.zip", DATA)
    with store.open_seekable("projects/2/out.zip", stored.sha256) as fh:
        fh.seek(-10, 2)
        assert fh.read() == DATA[-10:]
        fh.seek(0)
        assert fh.read() == DATA
    with store.open_seekable("projects/2/out.zip", None) as fh:  # no digest on record
        assert fh.seekable() and fh.read() == DATA


BAD_KEYS = ["", "/abs/key", "a/../b", "../escape", "a//b", "./a", "a/./b", "a/"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys_are_refused_by_every_call(store, key, tmp_path):
    calls = [
        lambda: store.put_bytes(key, b"x"),
        lambda: store.put_file(key, Path(__file__)),
        lambda: store.get_file(key, tmp_path / "out"),
        lambda: store.open(key),
        lambda: store.exists(key),
        lambda: store.delete_prefix(key),
        lambda: store.open_seekable(key, None),
    ]
    for call in calls:
        with pytest.raises(InvalidArtifactKey):
            call()
