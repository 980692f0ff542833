"""Finding and loading cookiecutter-format templates."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from engine import EngineError, UnknownTemplate
from engine.jinja import check_untrusted
from engine.lru import LRU
from engine.manifest import Manifest

BUILTIN_TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
DEFAULT_TEMPLATE_ID = "djass-saas"
MANIFEST_FILE = "forgeflow.yaml"
# Every activity loads its template; checking the whole tree for edits is O(files), so
# a template's tree is re-checked at most this often. An edit shows within this time.
RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class Template:
    id: str
    path: Path
    variables: OrderedDict[str, Any]
    manifest: Manifest
    has_manifest: bool
    digest: str
    trusted: bool = False

    @property
    def version(self) -> str:
        return self.manifest.version if self.has_manifest else self.digest[:12]

    @property
    def public_variables(self) -> list[str]:
        return [name for name in self.variables if not name.startswith("_")]


def search_dirs(template_path: str = "") -> list[Path]:
    """Configured template directories first, so a user template can shadow a built-in."""
    dirs = [Path(p) for p in template_path.split(os.pathsep) if p.strip()]
    return [*dirs, BUILTIN_TEMPLATES_DIR]


def discover_templates(dirs: Iterable[Path]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for base in dirs:
        if not base.is_dir():
            continue
        for child in sorted(base.iterdir()):
            if (child / "cookiecutter.json").is_file() and child.name not in found:
                found[child.name] = child.resolve()
    return found


def tree_digest(root: Path) -> str:
    """A content hash of the whole template (paths, bytes, executable bits)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        rel = path.relative_to(root).as_posix()
        digest.update(rel.encode() + b"\0")
        digest.update(b"x" if os.access(path, os.X_OK) else b"-")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def check_links(root: Path) -> None:
    """Refuse a template with a symlink that leads out of it or nowhere: rendering reads
    through links, so one to ``$FORGEFLOW_DATA_DIR/secret.key`` would put the key in every
    project. Links between the template's own files stay allowed."""
    base = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            link = Path(dirpath, name)
            if not link.is_symlink():
                continue
            rel = link.relative_to(root).as_posix()
            target = link.resolve()
            if not target.exists():
                raise EngineError(f"{root.name}: symlink {rel} points nowhere")
            if not target.is_relative_to(base):
                raise EngineError(f"{root.name}: symlink {rel} points outside the template")


@lru_cache(maxsize=64)
def _load(path: Path, trusted: bool, signature: tuple[int, int, int]) -> Template:
    check_links(path)
    try:
        variables = json.loads((path / "cookiecutter.json").read_text(encoding="utf-8"), object_pairs_hook=OrderedDict)
    except ValueError as exc:
        raise EngineError(f"{path.name}/cookiecutter.json is not valid JSON: {exc}") from exc
    if not isinstance(variables, OrderedDict):  # what object_pairs_hook makes of an object
        raise EngineError(f"{path.name}/cookiecutter.json must hold an object")
    if not trusted:
        check_untrusted(path.name, variables)
    manifest_path = path / MANIFEST_FILE
    has_manifest = manifest_path.is_file()
    try:
        raw = yaml.safe_load(manifest_path.read_text(encoding="utf-8")) if has_manifest else {}
        manifest = Manifest.model_validate(raw or {})
    except (ValueError, yaml.YAMLError) as exc:
        raise EngineError(f"{path.name}/{MANIFEST_FILE} is invalid: {exc}") from exc
    return Template(
        id=path.name,
        path=path,
        variables=variables,
        manifest=manifest,
        has_manifest=has_manifest,
        digest=tree_digest(path),
        trusted=trusted,
    )


def _signature(path: Path) -> tuple[int, int, int]:
    """Entry count, newest mtime and total size: an addition, a removal or an edit changes
    it (the size catches most edits made within one tick of the filesystem's clock)."""
    stats = [p.lstat() for p in [path, *path.rglob("*")]]  # a dangling link is refused later, not here
    return len(stats), max(s.st_mtime_ns for s in stats), sum(s.st_size for s in stats)


_checked: LRU[tuple[Path, bool], tuple[float, tuple[int, int, int], Template]] = LRU(64)


def load_template(template_id: str, *, template_path: str = "", trusted_ids: Iterable[str] = ()) -> Template:
    available = discover_templates(search_dirs(template_path))
    path = available.get(template_id)
    if path is None:
        raise UnknownTemplate(template_id, sorted(available))
    is_builtin = path.parent == BUILTIN_TEMPLATES_DIR
    trusted = is_builtin or template_id in set(trusted_ids)
    key = (path, trusted)
    now = time.monotonic()
    checked = _checked.get(key)
    if checked is not None and now - checked[0] < RECHECK_SECONDS:
        return checked[2]
    signature = _signature(path)
    template = checked[2] if checked is not None and checked[1] == signature else _load(path, trusted, signature)
    _checked.put(key, (now, signature, template))
    return template


def available_templates(template_path: str = "") -> list[str]:
    return sorted(discover_templates(search_dirs(template_path)))
