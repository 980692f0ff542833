"""Verify a rendered project before it is exported: every expected output is there, and
every Python, JSON, YAML and TOML file parses. Works on files held in memory, so the
activities need no directory to write first."""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import yaml

from engine.lru import LRU
from engine.tree import Tree


@dataclass
class Verification:
    ok: bool = True
    files_checked: int = 0
    errors: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.ok = False
        self.errors.append(message)


def _text(data: bytes) -> str:
    # As Path.read_text(encoding="utf-8") reads a file: \r\n and \r become \n.
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


# Contents known to parse, by kind and sha256: generations from one template repeat most
# files byte for byte, and parsing them again (compiling every module) was the biggest part
# of verify. Only successes are kept; a failure is checked again and named with its path.
_PARSED: LRU[tuple[str, bytes], bool] = LRU(50_000)
_CHECKED = frozenset({".py", ".json", ".yaml", ".yml", ".toml"})


def _check_file(data: bytes, rel: str, result: Verification) -> None:
    suffix = PurePosixPath(rel).suffix.lower()
    if suffix not in _CHECKED:
        return
    key = (suffix, hashlib.sha256(data).digest())
    if _PARSED.get(key):
        result.files_checked += 1
        return
    try:
        if suffix == ".py":
            compile(data, rel, "exec", dont_inherit=True)
        elif suffix == ".json":
            json.loads(_text(data))
        elif suffix in (".yaml", ".yml"):
            list(yaml.safe_load_all(_text(data)))
        else:
            tomllib.loads(_text(data))
    except (SyntaxError, ValueError, yaml.YAMLError, UnicodeDecodeError) as exc:
        result.fail(f"{rel}: {type(exc).__name__}: {exc}".splitlines()[0])
        return
    result.files_checked += 1
    _PARSED.put(key, True)


def verify_files(files: Tree, expected_outputs: Sequence[str]) -> Verification:
    result = Verification()
    for expected in expected_outputs:
        if expected not in files:
            result.fail(f"expected output {expected} is missing")
    for rel in sorted(files):
        _check_file(files[rel].data, rel, result)
    return result
