"""Spec: SPEC.md, ACCEPTANCE.md, ROUTES.md and DATA.md from the template and answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.manifest import ModuleDef
from engine.plan import Plan
from engine.templates import Template

SPEC_DOCUMENTS = ("SPEC.md", "ACCEPTANCE.md", "ROUTES.md", "DATA.md")


def _active_modules(template: Template, plan: Plan) -> list[ModuleDef]:
    by_slug = {m.slug: m for m in template.manifest.modules}
    return [by_slug[t.slug] for t in plan.tasks if t.slug in by_slug]


def render_spec(
    template: Template,
    context: Mapping[str, Any],
    plan: Plan,
    *,
    version: int = 1,
    feedback: Sequence[str] = (),
) -> dict[str, str]:
    values = context["cookiecutter"]
    name = str(values.get("project_name") or plan.root_name)
    modules = _active_modules(template, plan)
    title = template.manifest.title or template.id

    spec = [f"# {name}: specification", "", f"_Spec version {version}._", ""]
    if values.get("project_description"):
        spec += [str(values["project_description"]), ""]
    spec += [f"Generated from template `{template.id}` ({title}), version {template.version}.", ""]
    spec += ["## Settings", ""]
    spec += [f"- `{key}`: {values[key]!s}" for key in template.public_variables if key in values]
    spec += ["", "## Work plan", ""]
    for task in plan.tasks:
        deps = f" (after {', '.join(task.dependencies)})" if task.dependencies else ""
        spec.append(f"{task.sequence}. **{task.slug}**: {task.description}{deps}")
    if feedback:
        spec += ["", "## Reviewer feedback", ""] + [f"- {item}" for item in feedback]

    acceptance = [f"# {name}: acceptance criteria", ""]
    criteria = [c for m in modules for c in m.spec.acceptance]
    criteria += [f"`{path}` exists" for t in plan.tasks for path in t.expected_outputs]
    criteria += ["Every Python file byte-compiles; every JSON, YAML and TOML file parses."]
    acceptance += [f"- [ ] {c}" for c in criteria]

    routes = [f"# {name}: routes", ""]
    route_rows = [(r, m.slug) for m in modules for r in m.spec.routes]
    if route_rows:
        routes += ["| Method | Path | Module | Description |", "|---|---|---|---|"]
        routes += [f"| {r.method} | `{r.path}` | {slug} | {r.description} |" for r, slug in route_rows]
    else:
        routes.append("The template declares no routes.")

    data = [f"# {name}: data model", ""]
    models = [(d, m.slug) for m in modules for d in m.spec.data]
    for model, slug in models:
        data += [f"## {model.model} ({slug})", ""]
        if model.description:
            data += [model.description, ""]
        data += [f"- `{f}`" for f in model.fields] + [""]
    if not models:
        data.append("The template declares no data models.")

    return {
        "SPEC.md": "\n".join(spec).rstrip() + "\n",
        "ACCEPTANCE.md": "\n".join(acceptance).rstrip() + "\n",
        "ROUTES.md": "\n".join(routes).rstrip() + "\n",
        "DATA.md": "\n".join(data).rstrip() + "\n",
    }
