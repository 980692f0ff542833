"""Bundles read back (:func:`engine.gitpack.read_bundle`): what :func:`history_bundle`
writes comes back object for object as git itself reads it, and anything else, however
damaged, is refused with an EngineError and nothing else."""

from __future__ import annotations

import contextlib
import hashlib
import random
import struct
import subprocess
import zlib

import pytest

from engine import EngineError
from engine.gitpack import bundle, read_bundle
from engine.gitrepo import TaskCommit, history_bundle
from engine.tree import FileData
from tests.engine.test_gitpack import BASE, ENV, fetched, final_tree, git, tasks


def small_bundle() -> bytes:
    core = {"README.md": FileData(b"hello\n" * 40), "run.sh": FileData(b"#!/bin/sh\necho hi\n", 0o755)}
    docs = {"docs/index.md": FileData(b"# Docs\n"), "docs/empty": FileData(b"")}
    task_list = [TaskCommit("feat/task-001-core", "core\n", core), TaskCommit("feat/task-002-docs", "docs\n", docs)]
    return history_bundle(base_message=BASE, tasks=task_list)[1]


def with_pack(data: bytes, pack: bytes) -> bytes:
    """``data``'s header with another pack, its checksum made right."""
    body = pack[:-20] if pack[-20:] == hashlib.sha1(pack[:-20]).digest() else pack
    return data[: data.index(b"PACK")] + body + hashlib.sha1(body).digest()


def only_engine_errors(data: bytes) -> None:
    with contextlib.suppress(EngineError):
        read_bundle(data)


def test_a_history_bundle_reads_back_as_git_reads_it(tmp_path):
    task_list = tasks()
    history, data = history_bundle(base_message=BASE, tasks=task_list, final_tree=final_tree(task_list))
    refs, objects = read_bundle(data)
    repo, path = fetched(tmp_path, data)
    heads = [line.split(" ", 1) for line in git(repo, "bundle", "list-heads", str(path)).splitlines()]
    assert [(name, oid.hex()) for name, oid in refs] == [(name, oid) for oid, name in heads]
    assert dict(refs)["HEAD"].hex() == history.main_sha
    # Every object git holds, with git's kind and content.
    listed = git(repo, "cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)").split("\n")
    assert sorted((oid.hex(), kind.decode()) for oid, (kind, _body) in objects.items()) == [
        tuple(line.split()) for line in listed if line
    ]
    for oid, (kind, body) in objects.items():
        shown = subprocess.run(["git", "cat-file", kind.decode(), oid.hex()], cwd=repo, capture_output=True, env=ENV)
        assert shown.stdout == body
    # In the pack's order: written again, the same bytes.
    assert bundle(refs, objects) == data


def test_a_small_bundle_git_writes_is_read_too(tmp_path):
    # One commit of two distinct files: nothing git could write as a delta.
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "--initial-branch=main")
    (repo / "a.txt").write_text("a\n")
    (repo / "b.bin").write_bytes(bytes(range(256)))
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    git(repo, "bundle", "create", "-q", str(tmp_path / "git.bundle"), "--all")
    refs, objects = read_bundle((tmp_path / "git.bundle").read_bytes())
    assert dict(refs)["refs/heads/main"].hex() == git(repo, "rev-parse", "main").strip()
    assert sorted(kind for kind, _body in objects.values()) == [b"blob", b"blob", b"commit", b"tree"]


def test_every_truncation_is_an_engine_error():
    data = small_bundle()
    for end in range(0, len(data), 97):
        with pytest.raises(EngineError):
            read_bundle(data[:end])
    with pytest.raises(EngineError, match="checksum"):
        read_bundle(data[:-1])


def test_flipped_bytes_are_engine_errors_or_harmless():
    data = small_bundle()
    start = data.index(b"PACK")
    for pos in range(0, len(data), 7):
        flipped = data[:pos] + bytes([data[pos] ^ 0x41]) + data[pos + 1 :]
        if pos >= start:  # the pack's checksum covers every byte of it
            with pytest.raises(EngineError):
                read_bundle(flipped)
        else:  # a ref name may change and still be a name
            only_engine_errors(flipped)
    # With the checksum made right, the damage reaches the object reader.
    raised = 0
    pack = data[start:]
    for pos in range(12, len(pack) - 20, 3):
        flipped = with_pack(data, pack[:pos] + bytes([pack[pos] ^ 0x10]) + pack[pos + 1 :])
        try:
            read_bundle(flipped)
        except EngineError:
            raised += 1
    assert raised > 0


def test_random_bytes_are_engine_errors():
    rng = random.Random(7)
    data = small_bundle()
    header = data[: data.index(b"PACK")]
    for _ in range(300):
        noise = rng.randbytes(rng.randrange(0, 400))
        with pytest.raises(EngineError):
            read_bundle(noise)
        with pytest.raises(EngineError):
            read_bundle(header + noise)
        # A pack header and a right checksum around noise: the object reader must cope.
        count = struct.pack(">I", rng.choice([0, 1, 2, 2**32 - 1]))
        with pytest.raises(EngineError):
            read_bundle(with_pack(data, b"PACK\0\0\0\2" + count + noise))


def test_a_delta_is_refused(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "--initial-branch=main")
    lines = "".join(f"line {i} of a file long enough to be stored as a delta\n" for i in range(300))
    for change in ("", "one more line\n"):
        (repo / "big.txt").write_text(lines + change)
        git(repo, "add", "-A")
        git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    git(repo, "bundle", "create", "-q", str(tmp_path / "git.bundle"), "--all")
    with pytest.raises(EngineError, match="deltas"):
        read_bundle((tmp_path / "git.bundle").read_bytes())
    # A REF_DELTA (type 7): its base's id, then the delta's instructions.
    data = small_bundle()
    delta = zlib.compress(b"\x05\x05\x90\x05")
    pack = b"PACK" + struct.pack(">II", 2, 1) + bytes([(7 << 4) | 4]) + b"\x11" * 20 + delta
    with pytest.raises(EngineError, match="deltas"):
        read_bundle(with_pack(data, pack))


def test_other_bundles_are_refused(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "--initial-branch=main")
    for n in range(2):
        (repo / f"f{n}").write_text(f"{n}\n")
        git(repo, "add", "-A")
        git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", f"c{n}")
    git(repo, "bundle", "create", "-q", "--version=3", str(tmp_path / "v3.bundle"), "--all")
    with pytest.raises(EngineError, match="v3"):
        read_bundle((tmp_path / "v3.bundle").read_bytes())
    git(repo, "bundle", "create", "-q", str(tmp_path / "thin.bundle"), "main~1..main")
    with pytest.raises(EngineError, match="prerequisites"):
        read_bundle((tmp_path / "thin.bundle").read_bytes())
    with pytest.raises(EngineError, match="v2 git bundle"):
        read_bundle(b"PK\3\4 a zip, say")


def test_an_object_that_is_not_what_its_id_says_is_refused():
    data = small_bundle()
    refs, objects = read_bundle(data)
    blob = next(oid for oid, (kind, body) in objects.items() if body == b"# Docs\n")
    # The pack carries no ids: the blob's content changed makes another id, and the tree
    # that names the old one reaches an object the bundle does not hold.
    forged = {**objects, blob: (b"blob", b"# Forged\n")}
    with pytest.raises(EngineError, match=f"{blob.hex()} is reachable but not in its pack"):
        read_bundle(bundle(refs, forged))
    with pytest.raises(EngineError, match="reachable but not in its pack"):
        read_bundle(bundle([*refs, ("refs/heads/ghost", b"\x42" * 20)], objects))


def test_a_pack_that_does_not_add_up_is_refused():
    data = small_bundle()
    _, objects = read_bundle(data)
    pack = data[data.index(b"PACK") : -20]
    count = struct.unpack(">I", pack[8:12])[0]
    with pytest.raises(EngineError, match="after its last object"):
        read_bundle(with_pack(data, pack[:8] + struct.pack(">I", count - 1) + pack[12:]))
    with pytest.raises(EngineError, match="ends before its last object"):
        read_bundle(with_pack(data, pack[:8] + struct.pack(">I", count + 1) + pack[12:]))
    # Every object, then the first one again.
    one = bundle([], dict(list(objects.items())[:1]))
    again = one[one.index(b"PACK") + 12 : -20]
    with pytest.raises(EngineError, match="twice"):
        read_bundle(with_pack(data, pack[:8] + struct.pack(">I", count + 1) + pack[12:] + again))
    with pytest.raises(EngineError, match="version 3 pack"):
        read_bundle(with_pack(data, pack[:4] + struct.pack(">I", 3) + pack[8:]))
