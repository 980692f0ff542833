"""A project's ``.git`` directory, made from the run's git bundle without running git: what
``git clone`` of the bundle would leave, less what a clone writes that changes from one
clone to the next (reflogs with times, an index holding the files' inodes and mtimes, the
path it was cloned from). The same bundle always gives the same files, byte for byte.

* the bundle's pack as it is, with its index (``.idx`` v2) computed here;
* every branch as a loose ref, ``HEAD`` on ``main``;
* an index (v2) of ``main``'s tree whose entries carry no stat data, so ``git status``
  compares each file's content once and finds the work tree clean;
* ``info/exclude`` naming ``/.forgeflow/``, the run's record beside the history.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib
from pathlib import PurePosixPath

from engine import EngineError
from engine.archive import zip_bytes
from engine.tree import FileData

_KINDS = {1: b"commit", 2: b"tree", 3: b"blob", 4: b"tag"}
_CHUNK = 64 * 1024
CONFIG = b"[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n"


def _parse_bundle(bundle: bytes) -> tuple[dict[str, str], bytes]:
    header, sep, pack = bundle.partition(b"\n\n")
    lines = header.decode("utf-8").split("\n")
    if not sep or lines[0] not in ("# v2 git bundle", "# v3 git bundle"):
        raise EngineError("not a git bundle")
    refs: dict[str, str] = {}
    for line in lines[1:]:
        if line.startswith("-"):
            raise EngineError("the bundle needs commits it does not hold")
        if line and not line.startswith("@"):  # v3 capabilities start with "@"
            oid, _, name = line.partition(" ")
            refs[name] = oid
    return refs, pack


def _read_pack(pack: bytes) -> tuple[dict[bytes, tuple[bytes, bytes]], list[tuple[bytes, int, int]]]:
    """Every object (id -> (kind, body)) and (id, offset, crc32) for the index. A run's packs
    hold whole objects only (engine.gitpack); a delta is refused."""
    if pack[:4] != b"PACK" or struct.unpack(">I", pack[4:8])[0] != 2:
        raise EngineError("the bundle holds no version 2 pack")
    count = struct.unpack(">I", pack[8:12])[0]
    objects: dict[bytes, tuple[bytes, bytes]] = {}
    entries: list[tuple[bytes, int, int]] = []
    view = memoryview(pack)
    pos = 12
    for _ in range(count):
        start = pos
        byte = pack[pos]
        kind, size, shift = (byte >> 4) & 7, byte & 15, 4
        pos += 1
        while byte & 0x80:
            byte = pack[pos]
            size |= (byte & 0x7F) << shift
            shift, pos = shift + 7, pos + 1
        if kind not in _KINDS:
            raise EngineError("the bundle's pack holds deltas, which this reader does not resolve")
        inflater = zlib.decompressobj()
        pieces: list[bytes] = []
        while not inflater.eof:
            chunk = view[pos : pos + _CHUNK]
            if not chunk:
                raise EngineError("the bundle's pack is truncated")
            pieces.append(inflater.decompress(chunk))
            pos += len(chunk) - len(inflater.unused_data)
        body = b"".join(pieces)
        if len(body) != size:
            raise EngineError("the bundle's pack is corrupt")
        oid = hashlib.sha1(b"%s %d\0%s" % (_KINDS[kind], size, body), usedforsecurity=False).digest()
        objects[oid] = (_KINDS[kind], body)
        entries.append((oid, start, zlib.crc32(view[start:pos])))
    return objects, entries


def _pack_index(entries: list[tuple[bytes, int, int]], pack_checksum: bytes) -> bytes:
    ordered = sorted(entries)
    fanout = [0] * 256
    for oid, _offset, _crc in ordered:
        fanout[oid[0]] += 1
    for i in range(1, 256):
        fanout[i] += fanout[i - 1]
    small: list[int] = []
    large: list[int] = []
    for _oid, offset, _crc in ordered:
        if offset < 0x80000000:
            small.append(offset)
        else:
            small.append(0x80000000 | len(large))
            large.append(offset)
    parts = [b"\377tOc", struct.pack(">I", 2), struct.pack(">256I", *fanout)]
    parts += [oid for oid, _o, _c in ordered]
    parts += [struct.pack(">I", crc) for _oid, _o, crc in ordered]
    parts += [struct.pack(">I", offset) for offset in small] + [struct.pack(">Q", offset) for offset in large]
    parts.append(pack_checksum)
    data = b"".join(parts)
    return data + hashlib.sha1(data, usedforsecurity=False).digest()


Objects = dict[bytes, tuple[bytes, bytes]]  # id -> (kind, body)


def _tree_files(objects: Objects, tree: bytes, prefix: str = "") -> list[tuple[str, int, bytes]]:
    """(path, mode, blob id) of every file below ``tree``."""
    kind, body = objects[tree]
    if kind != b"tree":
        raise EngineError(f"{tree.hex()} is not a tree")
    files: list[tuple[str, int, bytes]] = []
    pos = 0
    while pos < len(body):
        space = body.index(b" ", pos)
        nul = body.index(b"\0", space)
        mode, name, oid = int(body[pos:space], 8), body[space + 1 : nul].decode("utf-8"), body[nul + 1 : nul + 21]
        pos = nul + 21
        if mode == 0o40000:
            files += _tree_files(objects, oid, f"{prefix}{name}/")
        else:
            files.append((f"{prefix}{name}", mode, oid))
    return files


def _index(objects: Objects, commit: bytes) -> bytes:
    kind, body = objects[commit]
    if kind != b"commit" or not body.startswith(b"tree "):
        raise EngineError(f"{commit.hex()} is not a commit")
    files = sorted(_tree_files(objects, bytes.fromhex(body[5:45].decode())), key=lambda f: f[0].encode())
    parts = [b"DIRC", struct.pack(">II", 2, len(files))]
    for path, mode, oid in files:
        name = path.encode()
        size = len(objects[oid][1]) & 0xFFFFFFFF
        # ctime, mtime, dev, ino: none; then mode, uid, gid: none, and the size.
        entry = struct.pack(">10I", 0, 0, 0, 0, 0, 0, mode, 0, 0, size) + oid + struct.pack(">H", min(len(name), 0xFFF))
        entry += name
        parts.append(entry + b"\0" * (8 - len(entry) % 8))
    data = b"".join(parts)
    return data + hashlib.sha1(data, usedforsecurity=False).digest()


def dot_git(bundle: bytes) -> dict[str, FileData]:
    """The ``.git`` directory's files, by path below it."""
    refs, pack = _parse_bundle(bundle)
    objects, entries = _read_pack(pack)
    head = refs.get("refs/heads/main") or refs.get("HEAD")
    if head is None:
        raise EngineError("the bundle has no main branch")
    name = pack[-20:].hex()
    files = {
        "HEAD": b"ref: refs/heads/main\n",
        "config": CONFIG,
        "info/exclude": b"/.forgeflow/\n",
        f"objects/pack/pack-{name}.pack": pack,
        f"objects/pack/pack-{name}.idx": _pack_index(entries, pack[-20:]),
        "index": _index(objects, bytes.fromhex(head)),
    }
    for ref, oid in refs.items():
        if ref.startswith("refs/heads/"):
            files[ref] = f"{oid}\n".encode()
    return {path: FileData(data) for path, data in files.items()}


def zip_with_git(archive: bytes, bundle: bytes) -> bytes:
    """The export's ZIP with the project's ``.git`` beside its files, as deterministic as
    the ZIP itself."""
    files: dict[str, FileData] = {}
    roots: set[str] = set()
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        for info in zf.infolist():
            root, _, rel = info.filename.partition("/")
            roots.add(root)
            files[PurePosixPath(rel).as_posix()] = FileData(zf.read(info), (info.external_attr >> 16) & 0o777)
    if len(roots) != 1:
        raise EngineError("the export's ZIP has no single project directory")
    files.update({f".git/{path}": data for path, data in dot_git(bundle).items()})
    return zip_bytes(files, root_name=roots.pop())
