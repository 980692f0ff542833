"""Rendering a cookiecutter template, file by file, with cookiecutter's own primitives.

``generate_files`` renders a whole tree in one go; forgeflow renders one module's
files per task. This walks the template exactly as ``generate_files`` does (same
environment, same copy-only rules, same ``generate_file``), but lets the caller pick
which rendered paths to write, so the union of all tasks is byte-identical to the
cookiecutter tool's output.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from cookiecutter.find import find_template
from cookiecutter.generate import generate_file, is_copy_only_path
from cookiecutter.utils import create_env_with_context, work_in
from jinja2 import FileSystemLoader, TemplateError

from engine import EngineError, PathScopeViolation

# generate_file() reads template files relative to the working directory, which is
# process-wide; renders in one worker process take turns. They are short and
# CPU-bound, so the lock costs no throughput under the GIL.
_RENDER_LOCK = threading.Lock()


@dataclass(frozen=True)
class TemplateFile:
    source: str  # path relative to the template's project directory, unrendered
    output: str  # rendered path relative to the generated project's root
    copy_only: bool


@contextmanager
def _template_environment(template_path: Path) -> Iterator[None]:
    # Local Jinja extensions (``_extensions``) are imported from the template's
    # directory, as the cookiecutter tool does.
    saved = list(sys.path)
    sys.path.insert(0, str(template_path))
    try:
        yield
    finally:
        sys.path[:] = saved


def _safe_relative(output: str) -> str:
    path = PurePosixPath(output.replace(os.sep, "/"))
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise PathScopeViolation(f"rendered path {output!r} escapes the project directory")
    return path.as_posix()


def _walk(template_path: Path, context: dict[str, Any]) -> tuple[str, list[TemplateFile], Any]:
    env = create_env_with_context(context)
    project_template = find_template(str(template_path), env)
    root_name = env.from_string(os.path.split(project_template)[1]).render(**context)
    files: list[TemplateFile] = []
    with work_in(project_template):
        env.loader = FileSystemLoader([".", "../templates"])
        for root, dirs, names in os.walk("."):
            copy_dirs = [d for d in sorted(dirs) if is_copy_only_path(os.path.normpath(os.path.join(root, d)), context)]
            for copy_dir in copy_dirs:
                base = os.path.normpath(os.path.join(root, copy_dir))
                rendered_base = env.from_string(base).render(**context)
                for sub_root, _sub_dirs, sub_names in os.walk(base):
                    for name in sorted(sub_names):
                        source = os.path.join(sub_root, name)
                        output = os.path.join(rendered_base, os.path.relpath(source, base))
                        files.append(TemplateFile(source, _safe_relative(output), True))
            dirs[:] = [d for d in sorted(dirs) if d not in copy_dirs]
            for name in sorted(names):
                source = os.path.normpath(os.path.join(root, name))
                output = env.from_string(source).render(**context)
                if not os.path.basename(output) or output.endswith(("/", os.sep)):
                    continue  # a file name that renders empty is skipped, as in cookiecutter
                files.append(TemplateFile(source, _safe_relative(output), is_copy_only_path(source, context)))
    return root_name, files, env


def list_outputs(template_path: Path, context: dict[str, Any]) -> tuple[str, list[TemplateFile]]:
    """The project directory name and every file the template renders, without writing."""
    with _RENDER_LOCK, _template_environment(template_path):
        try:
            root_name, files, _env = _walk(template_path, context)
        except TemplateError as exc:
            raise EngineError(f"template error: {exc}") from exc
    return root_name, files


def render(
    template_path: Path,
    context: dict[str, Any],
    project_dir: Path,
    select: Callable[[str], bool] = lambda _output: True,
    files: list[TemplateFile] | None = None,
) -> list[str]:
    """Write the selected files into ``project_dir``; return their rendered paths, sorted.

    ``files`` is the template's listing from :func:`list_outputs` for this same context;
    passing it saves re-rendering every file name when many tasks share one template."""
    project_dir = project_dir.resolve()
    project_dir.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    with _RENDER_LOCK, _template_environment(template_path):
        try:
            if files is None:
                _root, files, env = _walk(template_path, context)
            else:
                env = create_env_with_context(context)
                env.loader = FileSystemLoader([".", "../templates"])  # as _walk sets it
            project_template = find_template(str(template_path), env)
            with work_in(project_template):
                for item in files:
                    if not select(item.output):
                        continue
                    target = project_dir / item.output
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if item.copy_only:
                        shutil.copyfile(item.source, target)
                        shutil.copymode(item.source, target)
                    else:
                        generate_file(str(project_dir), item.source, context, env, False)
                    written.append(item.output)
        except TemplateError as exc:
            raise EngineError(f"template error: {exc}") from exc
    return sorted(written)


def files_under(root: Path) -> list[str]:
    """Every regular file below ``root`` as a sorted POSIX relative path; symlinks refused."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            if os.path.islink(os.path.join(dirpath, name)):
                raise PathScopeViolation(f"symlink {name!r} in the output is not allowed")
        found.extend(Path(dirpath, name).relative_to(root).as_posix() for name in filenames)
    return sorted(found)
