"""The rules a model's plan must keep before anyone sees it, checked all at once (every
error goes back to the model together), and the conversion of a valid plan to the
template path's own ``PlanResult``. Pure functions: the plan agent's output validator runs
them in workflow code."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from functools import cache

from agents.schemas import PlanOutput, PlanTask
from engine import InvalidPlan
from engine.plan import matches, toposort
from workflows.types import PlanResult, TaskDefinition

WILDCARDS = frozenset("*?[")


def plan_errors(plan: PlanOutput) -> list[str]:
    """Every rule the plan breaks, in a sentence each; empty when it is valid."""
    tasks = plan.tasks
    errors: list[str] = []
    ids = [t.id for t in tasks]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        errors.append(f"task ids must be unique; repeated: {', '.join(duplicates)}")
    known = set(ids)
    for task in tasks:
        for dep in task.dependencies:
            if dep == task.id:
                errors.append(f"task {task.id!r} depends on itself")
            elif dep not in known:
                errors.append(f"task {task.id!r} depends on unknown task {dep!r}")
        errors += _scope_errors(task)
    cycle = _cycle_members(tasks)
    if cycle:
        errors.append(f"the dependencies form a cycle among: {', '.join(cycle)}")
    elif not duplicates:
        # Overlaps only matter between tasks that may run at once: neither waits for the other.
        errors += _overlap_errors(tasks)
    return errors


def _path_problem(path: str) -> str | None:
    if not path.strip():
        return "is empty"
    if path.startswith("/") or "\\" in path or (len(path) > 1 and path[1] == ":"):
        return "is not a relative path with forward slashes"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "has an empty, '.' or '..' segment"
    return None


def _scope_errors(task: PlanTask) -> list[str]:
    errors = []
    for pattern in task.path_scope:
        if (problem := _path_problem(pattern)) is not None:
            errors.append(f"task {task.id!r}: path_scope {pattern!r} {problem}")
    for path in task.expected_outputs:
        if (problem := _path_problem(path)) is not None:
            errors.append(f"task {task.id!r}: expected output {path!r} {problem}")
        elif WILDCARDS & set(path):
            errors.append(f"task {task.id!r}: expected output {path!r} must be a file path, not a glob")
        elif not matches(path, task.path_scope):
            errors.append(f"task {task.id!r}: expected output {path!r} is outside its path_scope")
    return errors


def _cycle_members(tasks: Sequence[PlanTask]) -> list[str]:
    """The tasks left when every task whose known dependencies are done has been taken."""
    known = {t.id for t in tasks}
    remaining = {t.id: {d for d in t.dependencies if d in known and d != t.id} for t in tasks}
    while True:
        ready = [i for i, deps in remaining.items() if not deps]
        if not ready:
            return sorted(remaining)
        for task_id in ready:
            del remaining[task_id]
        for deps in remaining.values():
            deps.difference_update(ready)


def _ancestors(tasks: Sequence[PlanTask]) -> dict[str, set[str]]:
    direct = {t.id: set(t.dependencies) for t in tasks}
    found: dict[str, set[str]] = {}

    def walk(task_id: str) -> set[str]:
        if task_id not in found:
            found[task_id] = set()  # acyclic (checked first): no revisit happens mid-walk
            for dep in direct.get(task_id, ()):
                found[task_id] |= {dep} | walk(dep)
        return found[task_id]

    for task in tasks:
        walk(task.id)
    return found


def _overlap_errors(tasks: Sequence[PlanTask]) -> list[str]:
    ancestors = _ancestors(tasks)
    errors = []
    for n, first in enumerate(tasks):
        for second in tasks[n + 1 :]:
            if first.id in ancestors[second.id] or second.id in ancestors[first.id]:
                continue
            shared = [(a, b) for a in first.path_scope for b in second.path_scope if globs_overlap(a, b)]
            if shared:
                a, b = shared[0]
                errors.append(
                    f"tasks {first.id!r} and {second.id!r} may run at once but their path scopes overlap "
                    f"({a!r} and {b!r}): make one depend on the other or split the paths"
                )
    return errors


def globs_overlap(first: str, second: str) -> bool:
    """Whether some path matches both globs (engine.plan's dialect: ``**`` spans
    directories, ``*``, ``?`` and ``[...]`` stay in one segment). Two wildcard segments are
    compared by their fixed prefix and suffix, so in rare cases an overlap is reported that
    no path makes; never the other way round."""
    return _overlap(tuple(first.split("/")), tuple(second.split("/")))


@cache
def _overlap(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    if not a or not b:
        return all("**" in s for s in a + b)
    if "**" in a[0]:
        return _overlap(a[1:], b) or _overlap(a, b[1:])
    if "**" in b[0]:
        return _overlap(a, b[1:]) or _overlap(a[1:], b)
    return _segments_overlap(a[0], b[0]) and _overlap(a[1:], b[1:])


def _segments_overlap(a: str, b: str) -> bool:
    wild_a, wild_b = bool(WILDCARDS & set(a)), bool(WILDCARDS & set(b))
    if not wild_a and not wild_b:
        return a == b
    if not wild_a:
        return fnmatchcase(a, b)
    if not wild_b:
        return fnmatchcase(b, a)
    prefix_a, prefix_b = _fixed_prefix(a), _fixed_prefix(b)
    suffix_a, suffix_b = _fixed_prefix(a[::-1]), _fixed_prefix(b[::-1])
    prefixes = prefix_a.startswith(prefix_b) or prefix_b.startswith(prefix_a)
    suffixes = suffix_a.startswith(suffix_b) or suffix_b.startswith(suffix_a)
    return prefixes and suffixes


def _fixed_prefix(segment: str) -> str:
    for n, char in enumerate(segment):
        if char in WILDCARDS or char == "]":
            return segment[:n]
    return segment


def task_order(tasks: Sequence[PlanTask]) -> list[str]:
    """The template path's own order (engine.plan.toposort): ties broken by the model's order."""
    try:
        return toposort(tasks)
    except InvalidPlan as exc:
        raise ValueError(str(exc)) from exc


def to_plan_result(plan: PlanOutput, *, root_name: str) -> PlanResult:
    """A valid plan (``plan_errors`` empty) as the template path's PlanResult, tasks in order."""
    order = task_order(plan.tasks)
    position = {task_id: n for n, task_id in enumerate(order, start=1)}
    tasks = sorted(plan.tasks, key=lambda t: position[t.id])
    return PlanResult(
        root_name=root_name,
        tasks=[
            TaskDefinition(
                id=t.id,
                slug=t.id,
                # TaskDefinition has one text field: the title, then the instructions.
                description=f"{t.title}\n\n{t.instructions}",
                dependencies=list(t.dependencies),
                path_scope=list(t.path_scope),
                expected_outputs=list(t.expected_outputs),
                sequence=position[t.id],
            )
            for t in tasks
        ],
        merge_order=order,
    )
