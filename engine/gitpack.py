"""Git's transfer formats, written without git: a packfile (version 2) and the bundle (v2)
that wraps it, which ``git clone`` and ``git fetch`` read like a remote; and those bundles
read back (:func:`read_bundle`), which an update builds its history on.

The pack holds every object whole: a run's objects are a few hundred small files that
share no content, so deltas would cost time for little size."""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Mapping, Sequence

from engine import EngineError

# Level 1 compresses source text nearly as well as the default level 6 in a fraction
# of the time, and the bundle is built on every run's critical path.
LEVEL = 1

_TYPES = {b"commit": 1, b"tree": 2, b"blob": 3}

Objects = Mapping[bytes, tuple[bytes, bytes]]  # id -> (kind, body); the pack keeps this order


def object_header(kind: bytes, size: int) -> bytes:
    """A pack entry's header: its type and size, as git writes them."""
    # The type and the low 4 bits of the size, then 7 more bits per byte while the top
    # bit says another byte follows.
    out = bytearray()
    byte = (_TYPES[kind] << 4) | (size & 0x0F)
    size >>= 4
    while size:
        out.append(byte | 0x80)
        byte, size = size & 0x7F, size >> 7
    out.append(byte)
    return bytes(out)


def pack(objects: Objects, level: int = LEVEL) -> bytes:
    parts = [b"PACK", struct.pack(">II", 2, len(objects))]
    for kind, body in objects.values():
        parts += [object_header(kind, len(body)), zlib.compress(body, level)]
    data = b"".join(parts)
    return data + hashlib.sha1(data, usedforsecurity=False).digest()


def bundle(refs: Sequence[tuple[str, bytes]], objects: Objects, level: int = LEVEL) -> bytes:
    """A bundle with no prerequisites: ``refs`` (name, commit id) and every object they
    reach, all in ``objects``."""
    lines = "".join(f"{oid.hex()} {name}\n" for name, oid in refs)
    return f"# v2 git bundle\n{lines}\n".encode() + pack(objects, level)


# --- reading -------------------------------------------------------------------------

_KINDS = {number: kind for kind, number in _TYPES.items()} | {4: b"tag"}
# The inflater is fed this much at a time, not the rest of the pack: it copies whatever
# follows the stream's end (unused_data), and a copy of the rest per object is quadratic.
_CHUNK = 64 * 1024
_HEX = frozenset(b"0123456789abcdef")
_MAX_SIZE = 1 << 48  # far above any real object, and within what zlib takes as an output cap


def _fail(message: str) -> EngineError:
    return EngineError(f"not a bundle this reader takes: {message}")


def _refs(data: bytes) -> tuple[list[tuple[str, bytes]], int]:
    """The bundle's refs and where its pack starts."""
    first = data[:16]
    if first == b"# v3 git bundle\n":
        raise _fail("a v3 bundle (ours are v2)")
    if first != b"# v2 git bundle\n":
        raise _fail("it does not start with '# v2 git bundle'")
    refs: list[tuple[str, bytes]] = []
    pos = 16
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            raise _fail("its header has no end")
        line, pos = data[pos:end], end + 1
        if not line:
            return refs, pos
        if line.startswith(b"-"):
            raise _fail("it needs commits it does not hold (prerequisites)")
        oid, space, name = line[:40], line[40:41], line[41:]
        if not set(oid) <= _HEX or len(oid) != 40 or space != b" " or not name:
            raise _fail(f"a bad ref line {line[:80]!r}")
        try:
            refs.append((name.decode(), bytes.fromhex(oid.decode())))
        except UnicodeDecodeError:
            raise _fail(f"a ref name that is not UTF-8: {name[:80]!r}") from None


def _inflate(view: memoryview, pos: int, size: int) -> tuple[bytes, int]:
    """The ``size`` bytes of the zlib stream at ``pos``, and where the stream ends. The
    output is capped at one byte over ``size``, so a stream can never inflate past what its
    header announced."""
    inflater = zlib.decompressobj()
    pieces: list[bytes] = []
    got = 0
    while not inflater.eof:
        chunk = view[pos : pos + _CHUNK]
        if not chunk:
            raise _fail("its pack is truncated")
        try:
            piece = inflater.decompress(chunk, size + 1 - got)
        except zlib.error as exc:
            raise _fail(f"an object does not inflate ({exc})") from None
        got += len(piece)
        if got > size:
            raise _fail("an object is larger than its header says")
        pieces.append(piece)
        pos += len(chunk) - len(inflater.unused_data)
    if got != size:
        raise _fail("an object is smaller than its header says")
    return b"".join(pieces), pos


def _objects(pack: memoryview) -> dict[bytes, tuple[bytes, bytes]]:
    if len(pack) < 32 or pack[:4] != b"PACK":
        raise _fail("it holds no pack")
    version, count = struct.unpack(">II", pack[4:12])
    if version != 2:
        raise _fail(f"a version {version} pack (ours are version 2)")
    # Checked first: the checksum catches most damage before anything is inflated.
    if hashlib.sha1(pack[:-20], usedforsecurity=False).digest() != pack[-20:]:
        raise _fail("its pack's checksum is wrong (damaged or truncated)")
    end = len(pack) - 20
    objects: dict[bytes, tuple[bytes, bytes]] = {}
    pos = 12
    for _ in range(count):
        if pos >= end:
            raise _fail("its pack ends before its last object")
        byte = pack[pos]
        number, size, shift = (byte >> 4) & 7, byte & 15, 4
        pos += 1
        while byte & 0x80:
            if pos >= end:
                raise _fail("an object's header is broken")
            byte = pack[pos]
            size |= (byte & 0x7F) << shift
            shift, pos = shift + 7, pos + 1
            if size >= _MAX_SIZE:
                raise _fail("an object's header announces an impossible size")
        if number in (6, 7):
            raise _fail("its pack holds deltas, which this reader does not resolve")
        if number not in _KINDS:
            raise _fail(f"an object of unknown type {number}")
        body, pos = _inflate(pack[:end], pos, size)
        kind = _KINDS[number]
        oid = hashlib.sha1(b"%s %d\0" % (kind, size) + body, usedforsecurity=False).digest()
        if oid in objects:
            raise _fail(f"object {oid.hex()} is in the pack twice")
        objects[oid] = (kind, body)
    if pos != end:
        raise _fail("its pack has bytes after its last object")
    return objects


def tree_entries(body: bytes) -> list[tuple[bytes, str, bytes]]:
    """A tree object's entries: (mode, name, id). Names that could leave the tree when
    written out ("", ".", "..", or holding "/") are refused."""
    entries: list[tuple[bytes, str, bytes]] = []
    pos = 0
    while pos < len(body):
        space = body.find(b" ", pos)
        nul = body.find(b"\0", space + 1)
        if space < 0 or nul < 0 or nul + 21 > len(body):
            raise EngineError("a tree object is malformed")
        raw = body[space + 1 : nul]
        try:
            name = raw.decode()
        except UnicodeDecodeError:
            raise EngineError(f"a file name in the history is not UTF-8: {raw[:80]!r}") from None
        if name in ("", ".", "..") or "/" in name:
            raise EngineError(f"a tree holds the file name {name!r}")
        entries.append((body[pos:space], name, body[nul + 1 : nul + 21]))
        pos = nul + 21
    return entries


def commit_links(body: bytes) -> tuple[bytes, list[bytes]]:
    """A commit object's tree and parents."""
    tree: bytes | None = None
    parents: list[bytes] = []
    for line in body.split(b"\n\n", 1)[0].split(b"\n"):
        key, _, value = line.partition(b" ")
        if key in (b"tree", b"parent"):
            if len(value) != 40 or not set(value) <= _HEX:
                raise EngineError("a commit object is malformed")
            if key == b"parent":
                parents.append(bytes.fromhex(value.decode()))
            elif tree is None:
                tree = bytes.fromhex(value.decode())
    if tree is None:
        raise EngineError("a commit object has no tree")
    return tree, parents


def reachable(refs: Sequence[tuple[str, bytes]], objects: Objects) -> set[bytes]:
    """Every object the refs reach, all of which must be in ``objects``: a bundle missing
    one would make a history git cannot clone once more commits are put on top of it."""
    seen: set[bytes] = set()
    todo = [oid for _name, oid in refs]
    while todo:
        oid = todo.pop()
        if oid in seen:
            continue
        seen.add(oid)
        if oid not in objects:
            raise _fail(f"object {oid.hex()} is reachable but not in its pack")
        kind, body = objects[oid]
        if kind == b"commit":
            tree, parents = commit_links(body)
            todo += [tree, *parents]
        elif kind == b"tree":
            # A submodule's commit (160000) lives in another repository.
            todo += [child for mode, _name, child in tree_entries(body) if mode != b"160000"]
        elif kind == b"tag":
            first = body.split(b"\n", 1)[0]
            if not first.startswith(b"object ") or len(first) != 47 or not set(first[7:]) <= _HEX:
                raise _fail("a tag object is malformed")
            todo.append(bytes.fromhex(first[7:].decode()))
    return seen


def read_bundle(data: bytes) -> tuple[list[tuple[str, bytes]], dict[bytes, tuple[bytes, bytes]]]:
    """What :func:`bundle` writes, read back: the refs (name, id) and every object
    (id -> (kind, body)) in the pack's order. Only such bundles are taken: v2, no
    prerequisites, whole objects; whatever else ``data`` holds, and whatever is damaged or
    missing, raises :class:`EngineError`."""
    refs, start = _refs(data)
    objects = _objects(memoryview(data)[start:])
    reachable(refs, objects)
    return refs, objects
