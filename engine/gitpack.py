"""Git's transfer formats, written without git: a packfile (version 2) and the bundle (v2)
that wraps it, which ``git clone`` and ``git fetch`` read like a remote.

The pack holds every object whole: a run's objects are a few hundred small files that
share no content, so deltas would cost time for little size."""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Mapping, Sequence

# Level 1 compresses source text nearly as well as the default level 6 in a fraction
# of the time, and the bundle is built on every run's critical path.
LEVEL = 1

_TYPES = {b"commit": 1, b"tree": 2, b"blob": 3}

Objects = Mapping[bytes, tuple[bytes, bytes]]  # id -> (kind, body); the pack keeps this order


def _header(kind: bytes, size: int) -> bytes:
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
        parts += [_header(kind, len(body)), zlib.compress(body, level)]
    data = b"".join(parts)
    return data + hashlib.sha1(data, usedforsecurity=False).digest()


def bundle(refs: Sequence[tuple[str, bytes]], objects: Objects, level: int = LEVEL) -> bytes:
    """A bundle with no prerequisites: ``refs`` (name, commit id) and every object they
    reach, all in ``objects``."""
    lines = "".join(f"{oid.hex()} {name}\n" for name, oid in refs)
    return f"# v2 git bundle\n{lines}\n".encode() + pack(objects, level)
