"""Finding and loading templates: directories in the cookiecutter format (a
``cookiecutter.json``) or Copier's (a ``copier.yml``), found on the template path or checked
out of a registered git source at a pinned commit (engine.sources)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from engine import EngineError, UnknownTemplate
from engine.copier_template import describe as describe_copier
from engine.copier_template import is_copier
from engine.jinja import check_untrusted
from engine.lru import LRU
from engine.manifest import Manifest
from engine.sources import (
    DEFAULT_REF,
    NO_SOURCES,
    TemplateSources,
    TemplateSpec,
    UnknownTemplateRef,
    checkout,
    parse_spec,
    public_url,
    resolve,
)

BUILTIN_TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
DEFAULT_TEMPLATE_ID = "djass-saas"
MANIFEST_FILE = "forgeflow.yaml"
# Every activity loads its template; checking the whole tree for edits is O(files), so
# a template's tree is re-checked at most this often. An edit shows within this time.
RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class Origin:
    """Where a template from a registered source came from."""

    source: str  # the registered URL or path, without credentials
    ref: str  # as the create named it (HEAD: the default branch)
    commit: str


@dataclass(frozen=True)
class Template:
    id: str
    path: Path
    variables: OrderedDict[str, Any]
    manifest: Manifest
    has_manifest: bool
    digest: str
    trusted: bool = False
    format: str = "cookiecutter"  # or "copier"
    origin: Origin | None = None  # None: a directory on the template path, or a built-in
    # Copier's secret questions: their answers stay out of the exported records.
    secret_variables: frozenset[str] = frozenset()
    has_tasks: bool = False  # Copier's _tasks

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
            if ((child / "cookiecutter.json").is_file() or is_copier(child)) and child.name not in found:
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


def check_links(root: Path, name: str | None = None) -> None:
    """Refuse a template with a symlink that leads out of it or nowhere: rendering reads
    through links, so one to ``$FORGEFLOW_DATA_DIR/secret.key`` would put the key in every
    project. Links between the template's own files stay allowed."""
    base = root.resolve()
    label = name or root.name
    for dirpath, dirnames, filenames in os.walk(root):
        for entry in [*dirnames, *filenames]:
            link = Path(dirpath, entry)
            if not link.is_symlink():
                continue
            rel = link.relative_to(root).as_posix()
            target = link.resolve()
            if not target.exists():
                raise EngineError(f"{label}: symlink {rel} points nowhere")
            if not target.is_relative_to(base):
                raise EngineError(f"{label}: symlink {rel} points outside the template")


@lru_cache(maxsize=64)
def _load(path: Path, trusted: bool, signature: tuple[int, int, int], name: str) -> Template:
    check_links(path, name)
    secret: frozenset[str] = frozenset()
    has_tasks = False
    if (path / "cookiecutter.json").is_file():
        template_format = "cookiecutter"
        variables = _cookiecutter_variables(path, name)
        if not trusted:
            check_untrusted(name, variables)
    elif is_copier(path):
        template_format = "copier"
        described = describe_copier(path, trusted=trusted, name=name)
        variables, secret, has_tasks = described.variables, described.secret, described.has_tasks
    else:
        raise EngineError(f"{name}: neither a cookiecutter.json nor a copier.yml at its root")
    manifest_path = path / MANIFEST_FILE
    has_manifest = manifest_path.is_file()
    try:
        raw = yaml.safe_load(manifest_path.read_text(encoding="utf-8")) if has_manifest else {}
        manifest = Manifest.model_validate(raw or {})
    except (ValueError, yaml.YAMLError) as exc:
        raise EngineError(f"{name}/{MANIFEST_FILE} is invalid: {exc}") from exc
    if template_format == "copier" and manifest.questions:
        raise EngineError(f"{name}/{MANIFEST_FILE}: a Copier template's questions come from its copier.yml")
    return Template(
        id=name,
        path=path,
        variables=variables,
        manifest=manifest,
        has_manifest=has_manifest,
        digest=tree_digest(path),
        trusted=trusted,
        format=template_format,
        secret_variables=secret,
        has_tasks=has_tasks,
    )


def _cookiecutter_variables(path: Path, name: str) -> OrderedDict[str, Any]:
    try:
        variables = json.loads((path / "cookiecutter.json").read_text(encoding="utf-8"), object_pairs_hook=OrderedDict)
    except ValueError as exc:
        raise EngineError(f"{name}/cookiecutter.json is not valid JSON: {exc}") from exc
    if not isinstance(variables, OrderedDict):  # what object_pairs_hook makes of an object
        raise EngineError(f"{name}/cookiecutter.json must hold an object")
    return variables


def _signature(path: Path) -> tuple[int, int, int]:
    """Entry count, newest mtime and total size: an addition, a removal or an edit changes
    it (the size catches most edits made within one tick of the filesystem's clock)."""
    stats = [p.lstat() for p in [path, *path.rglob("*")]]  # a dangling link is refused later, not here
    return len(stats), max(s.st_mtime_ns for s in stats), sum(s.st_size for s in stats)


_checked: LRU[tuple[Path, bool], tuple[float, tuple[int, int, int], Template]] = LRU(64)


def load_template(
    template_id: str,
    *,
    template_path: str = "",
    trusted_ids: Iterable[str] = (),
    sources: TemplateSources = NO_SOURCES,
) -> Template:
    """A template by id, or a registered source's by its pinned spelling ``id@ref:commit``
    (:func:`resolve_template` makes it)."""
    spec = parse_spec(template_id)
    if sources.url(spec.id) is not None:
        return _load_source(spec, sources, trusted=spec.id in set(trusted_ids))
    available = discover_templates(search_dirs(template_path))
    path = available.get(spec.id)
    if path is None:
        raise UnknownTemplate(spec.id, sorted([*available, *sources.urls]))
    if spec.ref is not None:
        raise UnknownTemplateRef(spec.id, spec.ref, "it is a directory, with one version and no refs")
    is_builtin = path.parent == BUILTIN_TEMPLATES_DIR
    trusted = is_builtin or spec.id in set(trusted_ids)
    key = (path, trusted)
    now = time.monotonic()
    checked = _checked.get(key)
    if checked is not None and now - checked[0] < RECHECK_SECONDS:
        return checked[2]
    signature = _signature(path)
    unchanged = checked is not None and checked[1] == signature
    template = checked[2] if checked is not None and unchanged else _load(path, trusted, signature, path.name)
    _checked.put(key, (now, signature, template))
    return template


def _load_source(spec: TemplateSpec, sources: TemplateSources, *, trusted: bool) -> Template:
    if spec.commit is None:
        raise EngineError(f"template {spec.id!r} is not pinned to a commit")
    # A commit's checkout never changes: no signature to walk.
    path = checkout(spec, sources, verify=lambda tree: check_links(tree, spec.id))
    template = _load(path, trusted, (0, 0, 0), spec.id)
    origin = Origin(source=public_url(sources.urls[spec.id]), ref=spec.ref or DEFAULT_REF, commit=spec.commit)
    return replace(template, origin=origin)


def resolve_template(template_id: str, *, sources: TemplateSources = NO_SOURCES) -> str:
    """What a run names its template by: a registered source's ``id@ref`` pinned to the
    commit the ref names now (``id@ref:commit``), else the id as given."""
    spec = parse_spec(template_id)
    if sources.url(spec.id) is None:
        return template_id  # a directory: load_template says whether it exists
    return resolve(spec, sources).pinned


def available_templates(template_path: str = "", sources: TemplateSources = NO_SOURCES) -> list[str]:
    return sorted({*discover_templates(search_dirs(template_path)), *sources.urls})
