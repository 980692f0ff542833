"""Rendering a cookiecutter template, file by file, in memory, as cookiecutter would.

``generate_files`` renders a whole tree in one go into the working directory; forgeflow
renders one module's files per task. This walks the template exactly as
``generate_files`` does (same environment, same copy-only rules) and reproduces
``generate_file`` byte for byte (binary files copied, the template's newline style,
its file mode), but returns the files instead of writing them. Nothing changes the
working directory, so renders in one process run side by side.
"""

from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cookiecutter.exceptions import CookiecutterException
from cookiecutter.find import find_template
from cookiecutter.generate import is_binary, is_copy_only_path
from jinja2 import FileSystemLoader, Template, TemplateError, TemplateSyntaxError

from engine import EngineError
from engine.jinja import environment
from engine.lru import LRU
from engine.paths import check_root_name, safe_relative
from engine.tree import FileData, write_tree
from engine.tree import files_under as files_under  # re-exported: older callers import it from here

_CACHE_SIZE = 8
_NEWLINES = (None, "", "\n", "\r", "\r\n")


@dataclass(frozen=True)
class TemplateFile:
    source: str  # path relative to the template's project directory, unrendered
    output: str  # rendered path relative to the generated project's root
    copy_only: bool


@dataclass(frozen=True)
class _Source:
    data: bytes
    mode: int
    binary: bool


class _Renderer:
    """A template's Jinja environment, compiled templates and source files. With a digest
    (one exact version of the template), one renderer serves every task and project of
    that version: compiling and reading each file once per process, not once per task.
    An untrusted template's environment is Jinja's sandbox (``engine.jinja``)."""

    def __init__(self, template_path: Path, context: dict[str, Any], *, pinned: bool, trusted: bool) -> None:
        env = environment(context, trusted=trusted, template_path=template_path)
        self.project_template = Path(find_template(str(template_path), env))
        # Absolute search paths, the same two cookiecutter gives relative to its cwd.
        env.loader = FileSystemLoader([str(self.project_template), str(template_path / "templates")])
        if pinned and "auto_reload" not in context.get("cookiecutter", {}).get("_jinja2_env_vars", {}):
            env.auto_reload = False  # the digest pins the files: no mtime check per template
        self.env = env
        self._names: dict[str, Template] = {}
        self._templates: dict[str, Template] = {}
        self._sources: dict[str, _Source] = {}

    def render_name(self, name: str, context: dict[str, Any]) -> str:
        env = self.env
        literal = (
            env.variable_start_string not in name
            and env.block_start_string not in name
            and env.comment_start_string not in name
            and env.line_statement_prefix is None
            and env.line_comment_prefix is None
            and "\n" not in name
            and "\r" not in name
        )
        if literal:  # nothing for Jinja to do: the name renders to itself
            return name
        compiled = self._names.get(name)
        if compiled is None:
            compiled = self._names[name] = env.from_string(name)
        return compiled.render(**context)

    def source(self, rel: str) -> _Source:
        found = self._sources.get(rel)
        if found is None:
            path = self.project_template / rel
            data = path.read_bytes()
            # cookiecutter's own binary test (by extension, then content), on the same file
            binary = is_binary(str(path))
            found = self._sources[rel] = _Source(data, stat.S_IMODE(os.stat(path).st_mode), binary)
        return found

    def template(self, rel: str) -> Template:
        found = self._templates.get(rel)
        if found is None:
            try:
                found = self._templates[rel] = self.env.get_template(rel.replace(os.sep, "/"))
            except TemplateSyntaxError as exc:
                exc.translated = False  # as generate_file: report the file and line
                raise
        return found

    def render_file(self, item: TemplateFile, context: dict[str, Any]) -> FileData:
        source = self.source(item.source)
        if item.copy_only or source.binary:
            return FileData(source.data, source.mode)
        text = self.template(item.source).render(**context)
        newline = context.get("cookiecutter", {}).get("_new_lines", False) or _detected_newline(source.data)
        if newline not in _NEWLINES:
            raise EngineError(f"illegal _new_lines value {newline!r}")
        if newline not in (None, "", "\n"):
            text = text.replace("\n", newline)
        return FileData(text.encode("utf-8"), source.mode)


def _detected_newline(data: bytes) -> str | None:
    # generate_file opens the template as UTF-8 text and reads one line: `newlines` then
    # holds what the decoder saw in the first chunk, the first kind if there were several.
    # Reading from memory through the same TextIOWrapper gives the same answer.
    with io.TextIOWrapper(io.BytesIO(data), encoding="utf-8") as reader:
        reader.readline()
        seen = reader.newlines
    return seen[0] if isinstance(seen, tuple) else seen


_renderers: LRU[tuple[str, str, bool, str], _Renderer] = LRU(_CACHE_SIZE)


def _renderer(template_path: Path, context: dict[str, Any], digest: str | None, trusted: bool) -> _Renderer:
    if digest is None:  # an unpinned template may change between calls: nothing is kept
        return _Renderer(template_path, context, pinned=False, trusted=trusted)
    settings = context.get("cookiecutter", {})
    # The environment depends on the context only through these two settings.
    env_key = json.dumps([settings.get("_extensions"), settings.get("_jinja2_env_vars")], sort_keys=True, default=str)
    key = (str(template_path), digest, trusted, env_key)
    return _renderers.get_or_make(key, lambda: _Renderer(template_path, context, pinned=True, trusted=trusted))


def _walk(renderer: _Renderer, context: dict[str, Any]) -> tuple[str, list[TemplateFile]]:
    base = str(renderer.project_template)
    root_name = renderer.render_name(os.path.split(base)[1], context)
    check_root_name(root_name)
    files: list[TemplateFile] = []
    for root, dirs, names in os.walk(base):
        rel_root = os.path.relpath(root, base)  # the paths generate_files sees from its cwd
        copy_dirs = [d for d in sorted(dirs) if is_copy_only_path(os.path.normpath(os.path.join(rel_root, d)), context)]
        for copy_dir in copy_dirs:
            rel_base = os.path.normpath(os.path.join(rel_root, copy_dir))
            rendered_base = renderer.render_name(rel_base, context)
            for sub_root, sub_dirs, sub_names in os.walk(os.path.join(base, rel_base)):
                sub_dirs.sort()
                rel_sub = os.path.relpath(sub_root, os.path.join(base, rel_base))
                for name in sorted(sub_names):
                    source = os.path.normpath(os.path.join(rel_base, rel_sub, name))
                    output = os.path.join(rendered_base, os.path.relpath(source, rel_base))
                    files.append(TemplateFile(source, safe_relative(output), True))
        dirs[:] = [d for d in sorted(dirs) if d not in copy_dirs]
        for name in sorted(names):
            source = os.path.normpath(os.path.join(rel_root, name))
            output = renderer.render_name(source, context)
            if not os.path.basename(output) or output.endswith(("/", os.sep)):
                continue  # a file name that renders empty is skipped, as in cookiecutter
            files.append(TemplateFile(source, safe_relative(output), is_copy_only_path(source, context)))
    return root_name, files


def list_outputs(
    template_path: Path, context: dict[str, Any], *, digest: str | None = None, trusted: bool = False
) -> tuple[str, list[TemplateFile]]:
    """The project directory name and every file the template renders, without rendering
    their contents. ``digest`` (the template's) lets compiled names be reused; ``trusted``
    (the template's) chooses cookiecutter's own environment over Jinja's sandbox."""
    try:
        return _walk(_renderer(template_path, context, digest, trusted), context)
    except (TemplateError, CookiecutterException) as exc:  # the template's own fault: no retry helps
        raise EngineError(f"template error: {exc}") from exc


def render_files(
    template_path: Path,
    context: dict[str, Any],
    select: Callable[[str], bool] = lambda _output: True,
    files: list[TemplateFile] | None = None,
    *,
    digest: str | None = None,
    trusted: bool = False,
) -> dict[str, FileData]:
    """The selected rendered files, by output path.

    ``files`` is the template's listing from :func:`list_outputs` for this same context;
    passing it saves re-rendering every file name when many tasks share one template.
    ``digest`` is the template's: with it, compiled templates and sources are reused."""
    try:
        renderer = _renderer(template_path, context, digest, trusted)
        if files is None:
            _root, files = _walk(renderer, context)
        return {item.output: renderer.render_file(item, context) for item in files if select(item.output)}
    except (TemplateError, CookiecutterException) as exc:  # the template's own fault: no retry helps
        raise EngineError(f"template error: {exc}") from exc


def render(
    template_path: Path,
    context: dict[str, Any],
    project_dir: Path,
    select: Callable[[str], bool] = lambda _output: True,
    files: list[TemplateFile] | None = None,
    *,
    digest: str | None = None,
    trusted: bool = False,
) -> list[str]:
    """Write the selected files into ``project_dir``; return their rendered paths, sorted."""
    rendered = render_files(template_path, context, select, files, digest=digest, trusted=trusted)
    write_tree(rendered, project_dir.resolve())
    return sorted(rendered)
