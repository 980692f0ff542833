"""A task repository's objects once git has written them (:func:`agents.coding.gitcli.read_objects`):
what changed between two of its trees, the commit that records a tree, and the bundle of
what some refs reach. Each was a git process of its own per task (``diff --cached``,
``commit-tree``, ``rev-list``); git still makes every blob and tree, and reads every file.

A commit is metadata only: its bytes are what ``git commit-tree`` writes with forgeflow's
fixed identity and date (tests/agents/coding/test_gitobjects.py holds it to git's)."""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Mapping, Sequence

from engine import EngineError, gitpack
from engine.gitpack import object_header
from engine.gitrepo import IDENTITY, TIMESTAMP

Objects = Mapping[bytes, tuple[bytes, bytes]]  # id -> (kind, body)
Changes = dict[str, str]  # path -> "A" (added), "M" (modified) or "D" (deleted)
_KIND_ORDER = {b"commit": 0, b"tree": 1, b"blob": 2}
_DIR = b"40000"


def commit_object(*, tree: str, parents: Sequence[str], message: str) -> tuple[str, bytes]:
    """The commit of ``tree`` with ``parents`` and ``message`` stored as given, as git
    would write it: its id (hex) and its body."""
    if "\0" in message:
        raise EngineError("a commit message cannot hold a NUL character")
    lines = [f"tree {tree}", *(f"parent {parent}" for parent in parents)]
    lines += [f"author {IDENTITY} {TIMESTAMP}", f"committer {IDENTITY} {TIMESTAMP}", "", ""]
    body = "\n".join(lines).encode() + message.encode()
    return hashlib.sha1(b"commit %d\0" % len(body) + body, usedforsecurity=False).hexdigest(), body


def commit_bundle(objects: Objects, *, tree: str, parents: Sequence[str], message: str, ref: str) -> tuple[str, bytes]:
    """The commit of ``tree`` (:func:`commit_object`) and the bundle of ``ref`` and ``HEAD``
    at it, from ``objects`` and that commit."""
    commit, body = commit_object(tree=tree, parents=parents, message=message)
    data, _objects = bundle_of([(ref, commit), ("HEAD", commit)], {**objects, bytes.fromhex(commit): (b"commit", body)})
    return commit, data


def indexed_pack(objects: Objects) -> tuple[str, bytes, bytes]:
    """``objects`` as a pack (whole objects, stored uncompressed: it lives no longer than its
    task) and its version 2 index, as ``git index-pack`` writes one; and the pack's name."""
    parts = [b"PACK", struct.pack(">II", 2, len(objects))]
    entries: list[tuple[bytes, int, int]] = []  # id, CRC-32 of its bytes in the pack, offset
    offset = 12
    for oid, (kind, body) in objects.items():
        data = object_header(kind, len(body)) + zlib.compress(body, 0)
        entries.append((oid, zlib.crc32(data), offset))
        parts.append(data)
        offset += len(data)
    if offset >= 1 << 31:
        raise EngineError("a task's history of 2 GiB or more")  # past the index's 4-byte offsets
    pack = b"".join(parts)
    trailer = hashlib.sha1(pack, usedforsecurity=False).digest()
    entries.sort()
    fanout = [0] * 256  # how many ids start with each byte or a lower one
    for oid, _crc, _offset in entries:
        fanout[oid[0]] += 1
    for byte in range(1, 256):
        fanout[byte] += fanout[byte - 1]
    count = len(entries)
    index = b"".join(
        [
            b"\377tOc" + struct.pack(">I", 2) + struct.pack(">256I", *fanout),
            *(oid for oid, _crc, _offset in entries),
            struct.pack(f">{count}I", *(crc for _oid, crc, _offset in entries)),
            struct.pack(f">{count}I", *(offset for _oid, _crc, offset in entries)),
            trailer,
        ]
    )
    return f"pack-{trailer.hex()}", pack + trailer, index + hashlib.sha1(index, usedforsecurity=False).digest()


def stripspace(message: str) -> str:
    """A message as ``git merge -m`` stores it (git's strbuf_stripspace): each line's trailing
    whitespace gone, runs of empty lines made one, none first or last, a newline at the end."""
    lines: list[str] = []
    for line in message.split("\n"):
        line = line.rstrip(" \t\n\v\f\r")
        if line or (lines and lines[-1]):
            lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return "".join(line + "\n" for line in lines)


def tree_of(objects: Objects, commit: str) -> bytes:
    return gitpack.commit_links(_get(objects, bytes.fromhex(commit), b"commit"))[0]


def tree_changes(objects: Objects, old: bytes, new: bytes) -> Changes:
    """What ``git diff --name-status --no-renames old new`` says, a type change counted as
    a modification; subtrees with the same id are not read."""
    changes: Changes = {}
    todo = [("", old, new)]  # a stack, not recursion: a deep tree cannot exhaust Python's
    while todo:
        prefix, a, b = todo.pop()
        before, after = _entries(objects, a), _entries(objects, b)
        for name in before.keys() | after.keys():
            was, now = before.get(name), after.get(name)
            if was == now:
                continue
            path = prefix + name
            if was is not None and now is not None and was[0] == now[0] == _DIR:
                todo.append((path + "/", was[1], now[1]))
                continue
            gone = _files(objects, path, was)
            came = _files(objects, path, now)
            for rel in gone.keys() | came.keys():
                if rel not in came:
                    changes[rel] = "D"
                elif rel not in gone:
                    changes[rel] = "A"
                elif gone[rel] != came[rel]:
                    changes[rel] = "M"
    return dict(sorted(changes.items()))


def _entries(objects: Objects, tree: bytes | None) -> dict[str, tuple[bytes, bytes]]:
    if tree is None:
        return {}
    return {name: (mode, oid) for mode, name, oid in gitpack.tree_entries(_get(objects, tree, b"tree"))}


def _files(objects: Objects, path: str, entry: tuple[bytes, bytes] | None) -> dict[str, tuple[bytes, bytes]]:
    """Every non-tree entry at or below ``path``: (mode, id) by path."""
    if entry is None:
        return {}
    if entry[0] != _DIR:
        return {path: entry}
    found: dict[str, tuple[bytes, bytes]] = {}
    todo = [(path + "/", entry[1])]
    while todo:
        prefix, tree = todo.pop()
        for name, (mode, oid) in _entries(objects, tree).items():
            if mode == _DIR:
                todo.append((prefix + name + "/", oid))
            else:
                found[prefix + name] = (mode, oid)
    return found


def _get(objects: Objects, oid: bytes, kind: bytes) -> bytes:
    found = objects.get(oid)
    if found is None or found[0] != kind:
        raise EngineError(f"the repository has no {kind.decode()} {oid.hex()}")
    return found[1]


def bundle_of(refs: Sequence[tuple[str, str]], objects: Objects) -> tuple[bytes, dict[bytes, tuple[bytes, bytes]]]:
    """A bundle of ``refs`` (name, commit) and everything they reach, all in ``objects``;
    and those objects. They are in a fixed order (commits, trees, blobs; each by id), so
    the same history gives the same bytes whichever order git listed them in."""
    named = [(name, bytes.fromhex(commit)) for name, commit in refs]
    reached = gitpack.reachable(named, objects)
    ordered = {oid: objects[oid] for oid in sorted(reached, key=lambda oid: (_KIND_ORDER[objects[oid][0]], oid))}
    return gitpack.bundle(named, ordered), ordered
