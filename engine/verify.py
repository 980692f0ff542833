"""Verify a rendered project before it is exported."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from engine.render import files_under


@dataclass
class Verification:
    ok: bool = True
    files_checked: int = 0
    errors: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.ok = False
        self.errors.append(message)


def _check_file(path: Path, rel: str, result: Verification) -> None:
    suffix = path.suffix.lower()
    try:
        if suffix == ".py":
            compile(path.read_bytes(), rel, "exec", dont_inherit=True)
        elif suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif suffix in (".yaml", ".yml"):
            list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        elif suffix == ".toml":
            tomllib.loads(path.read_text(encoding="utf-8"))
        else:
            return
    except (SyntaxError, ValueError, yaml.YAMLError, UnicodeDecodeError) as exc:
        result.fail(f"{rel}: {type(exc).__name__}: {exc}".splitlines()[0])
        return
    result.files_checked += 1


def verify_tree(root: Path, expected_outputs: Sequence[str]) -> Verification:
    result = Verification()
    present = set(files_under(root))
    for expected in expected_outputs:
        if expected not in present:
            result.fail(f"expected output {expected} is missing")
    for rel in sorted(present):
        _check_file(root / rel, rel, result)
    return result
