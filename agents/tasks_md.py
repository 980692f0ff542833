"""The plan as a reviewer reads it: ``tasks.md``, one checkbox per task in the order they
can run, ``[P]`` on a task that may run at the same time as another (spec-kit's mark)."""

from __future__ import annotations

from agents.plan_rules import task_order
from agents.schemas import PlanOutput


def tasks_markdown(plan: PlanOutput) -> str:
    by_id = {t.id: t for t in plan.tasks}
    ancestors: dict[str, set[str]] = {}

    def above(task_id: str) -> set[str]:
        if task_id not in ancestors:
            found: set[str] = set()
            for dependency in by_id[task_id].dependencies:
                found |= {dependency, *above(dependency)}
            ancestors[task_id] = found
        return ancestors[task_id]

    def parallel(task_id: str) -> bool:
        # Neither waits for the other: the two may run at once (their scopes do not overlap).
        return any(other != task_id and other not in above(task_id) and task_id not in above(other) for other in by_id)

    lines = ["# Tasks", "", "`[P]`: may run at the same time as another task.", ""]
    for number, task_id in enumerate(task_order(plan.tasks), start=1):
        task = by_id[task_id]
        mark = " [P]" if parallel(task_id) else ""
        lines.append(f"- [ ] T{number:03d}{mark} `{task.id}`: {task.title}")
        if task.dependencies:
            lines.append(f"  - after: {', '.join(f'`{d}`' for d in task.dependencies)}")
        lines.append(f"  - writes: {', '.join(f'`{p}`' for p in task.path_scope)}")
        if task.expected_outputs:
            lines.append(f"  - produces: {', '.join(f'`{p}`' for p in task.expected_outputs)}")
        lines += ["", *[f"  {line}" if line else "" for line in task.instructions.splitlines()], ""]
    return "\n".join(lines).rstrip() + "\n"
