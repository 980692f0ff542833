"""Template sources: git repositories an operator registers by id (``FORGEFLOW_TEMPLATE_SOURCES``
or a ``templates.yaml``), which a create names as ``<id>`` or ``<id>@<ref>``.

A client only ever names a registered id and a ref; the URL is the operator's. The ref (a
tag, a branch or a commit id) is resolved to a commit once, when the project is created, and
from then on the project names its template *pinned*: ``<id>@<ref>:<commit>``. That one
string travels with the run (the workflow's ``template``), so every activity, on any worker
and on every retry, renders the same commit, which it checks out into a content-addressed
cache (:func:`checkout`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from engine import EngineError
from engine.gitsource import GitError, RemoteRefs, ls_remote, materialise

# An id an operator may register: what a create names before the "@".
SOURCE_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
# A ref a client may name. Stricter than git's own rules (check-ref-format): ASCII letters,
# digits and "._/-" only, a letter or digit first, at most 100 characters. So no ref reads
# as an option (-x, --upload-pack=...), a path (../x), a revision expression (v1^, @{-1},
# HEAD~2) or a pattern, and none holds a character a shell, a URL or a terminal treats
# specially.
REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
COMMIT = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
# The ref of a create that names none: the source's default branch.
DEFAULT_REF = "HEAD"


class InvalidTemplateRef(EngineError):
    def __init__(self, template_id: str, ref: str, reason: str) -> None:
        super().__init__(f"template {template_id!r}: {reason}")
        self.template_id, self.ref, self.reason = template_id, ref, reason


class UnknownTemplateRef(EngineError):
    def __init__(self, template_id: str, ref: str, reason: str = "") -> None:
        super().__init__(f"template {template_id!r} has no ref {ref!r}{': ' + reason if reason else ''}")
        self.template_id, self.ref, self.reason = template_id, ref, reason or "no such ref"


class SourceUnavailable(EngineError):
    """The source cannot be reached (or is no git repository): the operator's to fix."""

    def __init__(self, template_id: str, reason: str) -> None:
        super().__init__(f"the source of template {template_id!r} cannot be read: {reason}")
        self.template_id = template_id


@dataclass(frozen=True)
class TemplateSpec:
    """What names a template: ``id``, ``id@ref`` or, pinned, ``id@ref:commit``."""

    id: str
    ref: str | None = None
    commit: str | None = None

    @property
    def pinned(self) -> str:
        if self.commit is None:
            raise ValueError(f"{self.id}@{self.ref} is not resolved to a commit")
        return f"{self.id}@{self.ref or DEFAULT_REF}:{self.commit}"


def check_ref(template_id: str, ref: str) -> str:
    if len(ref) > 100:
        raise InvalidTemplateRef(template_id, ref[:100], "the ref is longer than 100 characters")
    parts = ref.split("/")
    if (
        not REF.match(ref)
        or any(not part or part.startswith(".") or part.endswith((".lock", ".")) for part in parts)
        or ".." in ref
    ):
        raise InvalidTemplateRef(
            template_id,
            ref,
            f"{ref!r} is not a ref forgeflow accepts (a tag, branch or commit id: ASCII letters, digits "
            "and ._/- , a letter or digit first, no '..')",
        )
    return ref


def parse_spec(text: str) -> TemplateSpec:
    """``id``, ``id@ref`` or the pinned ``id@ref:commit`` (refs hold no ":", git's rules)."""
    template_id, at, rest = text.partition("@")
    if not at:
        return TemplateSpec(template_id)
    ref, colon, commit = rest.partition(":")
    check_ref(template_id, ref)
    if colon and not COMMIT.match(commit):
        raise InvalidTemplateRef(template_id, ref, f"{commit!r} is not a commit id")
    return TemplateSpec(template_id, ref, commit or None)


@dataclass(frozen=True)
class TemplateSources:
    """The registered sources (id -> URL or local path) and where their commits are kept."""

    urls: Mapping[str, str]
    cache_dir: Path

    def url(self, template_id: str) -> str | None:
        return self.urls.get(template_id)


NO_SOURCES = TemplateSources(urls={}, cache_dir=Path(".forgeflow/template-cache"))


def load_registry(inline: Mapping[str, str], file: Path | None) -> dict[str, str]:
    """The sources of ``templates.yaml`` (``sources: {id: url}``), then the inline ones
    (``FORGEFLOW_TEMPLATE_SOURCES``), which win for an id both name."""
    found: dict[str, Any] = {}
    if file is not None:
        try:
            stat = file.stat()
        except OSError as exc:
            raise EngineError(f"{file}: cannot read the template sources: {exc}") from exc
        found.update(_file_sources(str(file), (stat.st_mtime_ns, stat.st_size)))
    found.update(inline)
    for template_id, url in found.items():
        if not isinstance(template_id, str) or not SOURCE_ID.match(template_id):
            raise EngineError(f"template source id {template_id!r} must match {SOURCE_ID.pattern}")
        if not isinstance(url, str) or not url.strip() or url.startswith("-") or not url.isprintable():
            raise EngineError(f"template source {template_id!r}: {url!r} is not a URL or path")
    return dict(found)


@lru_cache(maxsize=8)
def _file_sources(path: str, _stamp: tuple[int, int]) -> dict[str, Any]:
    # Read again only when the file changes (its modification time or size).
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise EngineError(f"{path}: cannot read the template sources: {exc}") from exc
    entries = raw.get("sources") if isinstance(raw, dict) else None
    if not isinstance(entries, dict):
        raise EngineError(f"{path}: expected a mapping `sources: {{id: url}}`")
    return dict(entries)


def public_url(url: str) -> str:
    """The URL as an export may show it: no user or password, query or fragment."""
    if "://" not in url:
        return url  # a local path, or scp-like user@host:path (whose user is no secret)
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def remote_refs(template_id: str, sources: TemplateSources) -> RemoteRefs:
    url = sources.url(template_id)
    if url is None:
        raise EngineError(f"template {template_id!r} is not a registered source")
    try:
        return ls_remote(url)
    except GitError as exc:
        raise SourceUnavailable(template_id, str(exc)) from exc


def resolve(spec: TemplateSpec, sources: TemplateSources) -> TemplateSpec:
    """The spec pinned to the commit its ref names now (a commit id names itself)."""
    if spec.commit is not None:
        return spec
    ref = spec.ref or DEFAULT_REF
    if COMMIT.match(ref):
        return TemplateSpec(spec.id, ref, ref)  # whether it exists, the checkout finds out
    commit = remote_refs(spec.id, sources).commit_of(ref)
    if commit is None:
        raise UnknownTemplateRef(spec.id, ref, "no such tag or branch")
    return TemplateSpec(spec.id, ref, commit)


def checkout(spec: TemplateSpec, sources: TemplateSources, *, verify: Callable[[Path], None]) -> Path:
    """The pinned commit's files in the cache (``<cache>/<commit>``), fetched if missing;
    ``verify`` sees them before they are published there, and may refuse them."""
    url = sources.url(spec.id)
    if url is None or spec.commit is None:
        raise EngineError(f"template {spec.id!r} is not a registered source pinned to a commit")
    try:
        return materialise(url, spec.commit, sources.cache_dir, ref=spec.ref, verify=verify)
    except GitError as exc:
        if exc.missing:
            raise UnknownTemplateRef(spec.id, spec.ref or spec.commit, "the source has no such commit") from exc
        raise SourceUnavailable(spec.id, str(exc)) from exc
