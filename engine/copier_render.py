"""Rendering a Copier template with Copier itself (``run_copy``, as ``copier copy
--defaults --data ...`` does), into a private directory, read back into memory: the tasks
of a run then take their files from that one rendering, as they take a cookiecutter
template's from engine.render.

What differs from ``copier copy``, on purpose:

* Copier's answers file (``.copier-answers.yml`` unless ``_answers_file`` says otherwise)
  is left out: it would name the worker's template cache as the template's source.
  ``.forgeflow/answers.json`` records the source, ref, commit and answers instead.
* ``_tasks`` never run while rendering. A trusted template's run afterwards, on the
  merged project, in the sandbox (:func:`run_tasks`), like a cookiecutter template's
  hooks; an untrusted template's are skipped, on record.
"""

from __future__ import annotations

import json
import shlex
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import TemplateError

from engine import EngineError, copier_bridge
from engine.copier_answers import root_name
from engine.hooks import HOOK_TIMEOUT, _failure, _limited
from engine.lru import LRU
from engine.paths import check_root_name, safe_relative
from engine.sandbox import SandboxConfig
from engine.sandbox import run as run_sandboxed
from engine.templates import Template
from engine.tree import FileData, read_tree

# A run's tasks land on few workers, and each asks for the same rendering: a few are kept.
_trees: LRU[tuple[str, str, bool, str], tuple[str, dict[str, FileData]]] = LRU(16)


def render_tree(template: Template, data: Mapping[str, Any]) -> tuple[str, dict[str, FileData]]:
    """The project directory's name and every file Copier renders for ``data`` (the
    answers, passed as Copier's ``data``: never rendered as Jinja)."""
    key = (str(template.path), template.digest, template.trusted, json.dumps(data, sort_keys=True, default=str))
    return _trees.get_or_make(key, lambda: _render(template, dict(data)))


def _render(template: Template, data: dict[str, Any]) -> tuple[str, dict[str, FileData]]:
    root = root_name(template, data)
    check_root_name(root)
    with tempfile.TemporaryDirectory(prefix="ff-copier-") as tmp:
        dst = Path(tmp) / root
        try:
            worker = copier_bridge.run_copy(
                str(template.path),
                dst,
                data=data,
                defaults=True,
                quiet=True,
                unsafe=template.trusted,
                skip_tasks=True,
                settings=copier_bridge.settings(),
            )
            answers_file = worker.answers_relpath.as_posix()
        except (copier_bridge.CopierError, TemplateError, ValueError, TypeError) as exc:
            raise EngineError(f"template error: {exc}") from exc
        tree = read_tree(dst) if dst.is_dir() else {}
    tree.pop(answers_file, None)
    for rel in tree:
        safe_relative(rel)  # the names every other template's files are held to
    return root, tree


def run_tasks(template: Template, data: Mapping[str, Any], project_dir: Path, *, sandbox: SandboxConfig) -> list[str]:
    """A trusted template's ``_tasks``, rendered by Copier as ``copier copy`` renders them,
    each run in the sandbox in the project (or its ``working_directory`` there). Returns
    what ran; raises EngineError when one fails."""
    if not template.trusted:
        raise EngineError(f"template {template.id} is not trusted: its tasks do not run")
    sandbox = _limited(sandbox, HOOK_TIMEOUT)
    root = project_dir.resolve()
    ran: list[str] = []
    try:
        with copier_bridge.worker(template.path, root, dict(data), trusted=True) as worker:
            worker._ask()
            tasks = list(worker.template.tasks)
            for number, task in enumerate(tasks, start=1):
                extra = {f"_{k}": v for k, v in task.extra_vars.items()}
                extra["_copier_operation"] = "copy"
                if not copier_bridge.cast_to_bool(worker._render_value(task.condition, extra)):
                    ran.append(f"skipped: task {number} (its condition is false)")
                    continue
                if isinstance(task.cmd, str):
                    shown = worker._render_string(task.cmd, extra)
                    argv = ["sh", "-c", shown]
                else:
                    argv = [worker._render_string(str(part), extra) for part in task.cmd]
                    shown = shlex.join(argv)
                cwd = (root / worker._render_string(str(task.working_directory), extra)).resolve()
                if not cwd.is_relative_to(root):
                    raise EngineError(f"task {number} would run outside the project ({cwd})")
                # As Copier gives them: each extra variable in the environment, upper-cased.
                env = [f"{name[1:].upper()}={value}" for name, value in extra.items()]
                outcome = run_sandboxed(["env", *env, *argv], cwd=cwd, config=sandbox, trusted=True, writable=[root])
                if not outcome.ok:
                    raise EngineError(f"task {number} `{shown}` failed ({_failure(outcome, sandbox)})")
                ran.append(f"ran: task {number}: {shown}")
    except (copier_bridge.CopierError, TemplateError, ValueError, TypeError) as exc:
        raise EngineError(f"template error: {exc}") from exc
    return ran
