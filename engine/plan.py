"""Decomposition: the template's modules -> an acyclic DAG of tasks with path scopes."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from jinja2 import TemplateError

from engine import EngineError, InvalidPlan
from engine.context import evaluate
from engine.jinja import environment
from engine.manifest import ModuleDef
from engine.outputs import template_outputs
from engine.render import TemplateFile
from engine.templates import Template


@dataclass(frozen=True)
class PlannedTask:
    id: str
    slug: str
    description: str
    dependencies: list[str]
    path_scope: list[str]
    expected_outputs: list[str]
    sequence: int = 0


@dataclass(frozen=True)
class Plan:
    root_name: str
    tasks: list[PlannedTask]
    merge_order: list[str]
    owners: dict[str, str] = field(default_factory=dict)  # rendered path -> task slug


@lru_cache(maxsize=1024)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Path globs: ``**`` spans directories (``**/`` also none), ``*`` and ``?`` stay
    inside one path segment, ``[...]`` is a character class."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            out.append("[" + pattern[i + 1 : end].replace("!", "^", 1) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def matches(path: str, patterns: Sequence[str]) -> bool:
    return any(_glob_regex(p).match(path) for p in patterns)


@dataclass(frozen=True)
class Ownership:
    """Who owns which rendered file, worked out once for a template and its answers."""

    files: list[TemplateFile]
    owners: dict[str, str | None]
    by_owner: dict[str | None, list[TemplateFile]] = field(default_factory=dict)

    def selector(self, task_slug: str) -> Callable[[str], bool]:
        return lambda path: self.owners.get(path) == task_slug

    def files_of(self, task_slug: str) -> list[TemplateFile]:
        """The task's own files, without scanning the whole listing (a task per file
        would make that quadratic in the file count)."""
        return self.by_owner.get(task_slug, [])


def ownership(template: Template, context: Mapping[str, Any]) -> Ownership:
    _root, files = template_outputs(template, context)
    modules = template.manifest.modules or _derived_modules([f.output for f in files])
    owners = {f.output: owner_of(f.output, modules) for f in files}
    by_owner: dict[str | None, list[TemplateFile]] = {}
    for item in files:
        by_owner.setdefault(owners[item.output], []).append(item)
    return Ownership(files=files, owners=owners, by_owner=by_owner)


def owner_of(path: str, modules: Sequence[ModuleDef]) -> str | None:
    """The first module, in declaration order, whose paths match the rendered path."""
    for module in modules:
        if matches(path, module.paths):
            return module.slug
    return None


def _derived_modules(outputs: list[str]) -> list[ModuleDef]:
    """Without a manifest: one module per top-level directory, one for the root files."""
    tops = sorted({p.split("/", 1)[0] for p in outputs if "/" in p})
    modules = [
        ModuleDef(
            slug=_slug_for(top),
            description=f"Render {top}/",
            paths=[f"{top}/**"],
            depends_on=["root"],
        )
        for top in tops
    ]
    root = ModuleDef(slug="root", description="Render the top-level files", paths=["*"])
    return [*modules, root]


def _slug_for(name: str) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_") or "dir"
    return slug[:50]


class Dependent(Protocol):
    """A task as ordering sees it: the template's, or a plan a model wrote (agents)."""

    @property
    def id(self) -> str: ...
    @property
    def dependencies(self) -> list[str]: ...


def toposort(tasks: Sequence[Dependent]) -> list[str]:
    """Kahn's algorithm, ties broken by declaration order so the order is stable."""
    ids = [t.id for t in tasks]
    known = set(ids)
    if len(known) != len(ids):
        raise InvalidPlan("task ids are not unique")
    for task in tasks:
        for dep in task.dependencies:
            if dep not in known:
                raise InvalidPlan(f"task {task.id!r} depends on unknown task {dep!r}")
    remaining = {t.id: set(t.dependencies) for t in tasks}
    order: list[str] = []
    while remaining:
        ready = [i for i in ids if i in remaining and not remaining[i]]
        if not ready:
            cycle = ", ".join(sorted(remaining))
            raise InvalidPlan(f"the task graph has a cycle among: {cycle}")
        for task_id in ready:
            order.append(task_id)
            del remaining[task_id]
        for deps in remaining.values():
            deps.difference_update(ready)
    return order


def decompose(template: Template, context: Mapping[str, Any]) -> Plan:
    root_name, files = template_outputs(template, context)
    outputs = [f.output for f in files]
    declared = template.manifest.modules or _derived_modules(outputs)
    active = [m for m in declared if evaluate(m.when, context, trusted=template.trusted)]
    active_slugs = {m.slug for m in active}
    owners: dict[str, str] = {}
    for path in outputs:
        owner = owner_of(path, declared)
        if owner is None:
            raise InvalidPlan(f"no module's paths cover {path!r}")
        if owner not in active_slugs:
            raise InvalidPlan(f"{path!r} belongs to module {owner!r}, which is not active")
        owners[path] = owner
    tasks = [
        PlannedTask(
            id=m.slug,
            slug=m.slug,
            description=m.description or f"Render module {m.slug}",
            # A dependency on an inactive module is dropped: its files do not exist.
            dependencies=[d for d in m.depends_on if d in active_slugs],
            path_scope=list(m.paths),
            expected_outputs=[_render_path(p, context, trusted=template.trusted) for p in m.expected_outputs],
        )
        for m in active
    ]
    for module in active:
        for dep in module.depends_on:
            if dep not in {m.slug for m in declared}:
                raise InvalidPlan(f"module {module.slug!r} depends on unknown module {dep!r}")
    order = toposort(tasks)
    position = {task_id: n for n, task_id in enumerate(order, start=1)}
    tasks = sorted(
        (PlannedTask(**{**t.__dict__, "sequence": position[t.id]}) for t in tasks),
        key=lambda t: t.sequence,
    )
    return Plan(root_name=root_name, tasks=tasks, merge_order=order, owners=owners)


def _render_path(path: str, context: Mapping[str, Any], *, trusted: bool) -> str:
    if "{{" not in path and "{%" not in path:
        return path
    try:
        return environment(context, trusted=trusted).from_string(path).render(**context)
    except TemplateError as exc:
        raise EngineError(f"cannot render expected output {path!r}: {exc}") from exc
