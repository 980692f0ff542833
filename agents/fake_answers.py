"""What forgeflow-fake answers when no test scripted the request: a deterministic,
sensible answer made from the request's own data block (agents.prompts), every one marked
as the fake's."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from agents.plan_rules import plan_errors
from agents.prompts import read_data_block
from agents.schemas import MAX_QUESTIONS, PlanOutput

FAKE_MODEL = "forgeflow-fake"
BANNER = "Written by forgeflow-fake, a scripted stand-in for a language model: not a real model's work."


def default_arguments(tool: str | None, body: dict[str, Any]) -> dict[str, Any] | str:
    data = _data(body)
    if tool == "submit_questions":
        return _questions(data)
    if tool == "submit_spec":
        return _spec(data)
    if tool == "submit_plan":
        return _plan(data)
    return BANNER


def _data(body: dict[str, Any]) -> dict[str, Any]:
    for message in body.get("messages", []):
        content = message.get("content")
        if message.get("role") == "user" and isinstance(content, str) and "<project-data>" in content:
            return read_data_block(content)
    return {}


def _questions(data: dict[str, Any]) -> dict[str, Any]:
    questions = []
    for q in data.get("template_questions", [])[: MAX_QUESTIONS - 1]:
        kind, default = q.get("type"), q.get("default")
        options = [str(o) for o in q.get("options") or []] or None
        if kind == "boolean":
            recommended: bool | str = default in (True, "y", "yes", "true")
            options = None
        elif kind == "single_choice" and options and len(options) >= 2:
            recommended = str(default) if str(default) in options else options[0]
        else:
            kind, options, recommended = "text", None, "" if default is None else str(default)
        questions.append(
            {
                "id": q["id"],
                "question": q["question"],
                "type": kind,
                "options": options,
                "recommended": recommended,
                "why": BANNER,
            }
        )
    questions.append(
        {
            "id": "primary_audience",
            "question": "Who will use the project first?",
            "type": "text",
            "options": None,
            "recommended": "Its own team",
            "why": BANNER,
        }
    )
    return {"questions": questions}


def _spec(data: dict[str, Any]) -> dict[str, Any]:
    project = data.get("project", {})
    name = project.get("name") or "The project"
    quoted = "\n".join(f"> {line}" for line in (project.get("description") or "(no description)").splitlines())
    answers = [f"- {c['question']}: {c['answer']}" for c in data.get("clarifications", [])]
    feedback = [f"- Addressed: {item}" for item in data.get("feedback", [])]
    template = data.get("template", {})
    spec = [f"# {name}: specification", "", f"_{BANNER}_", "", "The client asked for:", "", quoted, ""]
    spec += [f"Built on the template `{template.get('id', '?')}` ({template.get('title', '')}).", ""]
    spec += ["## Decisions", "", *(answers or ["- None asked."])]
    if feedback:
        spec += ["", "## Review feedback", "", *feedback]
    banner = f"\n\n_{BANNER}_\n\n"
    return {
        "spec_md": "\n".join(spec) + "\n",
        "acceptance_md": f"# {name}: acceptance criteria{banner}- [ ] The project builds and its tests pass.\n",
        "routes_md": f"# {name}: routes{banner}| Method | Path | Purpose |\n|---|---|---|\n| GET | `/` | Home |\n",
        "data_md": f"# {name}: data model{banner}No entities beyond the template's own.\n",
    }


def _plan(data: dict[str, Any]) -> dict[str, Any]:
    tasks = [
        {
            "id": t["id"],
            "title": (t.get("description") or t["id"])[:200],
            "instructions": f"{BANNER} Produce the files of {t['id']} as the template describes them.",
            "dependencies": list(t.get("dependencies") or []),
            "path_scope": list(t.get("path_scope") or ["**"]),
            "expected_outputs": list(t.get("expected_outputs") or []),
        }
        for t in data.get("template_plan", [])
    ]
    if not tasks:
        tasks = [
            {
                "id": "scaffold",
                "title": "Scaffold the project",
                "instructions": BANNER,
                "dependencies": [],
                "path_scope": ["**"],
                "expected_outputs": [],
            }
        ]
    if plan_errors(PlanOutput.model_validate({"tasks": tasks})):
        # The template's own division may overlap where its order decides who owns a file: one
        # task after another keeps the plan valid.
        for previous, task in pairwise(tasks):
            task["dependencies"] = [previous["id"]]
        tasks[0]["dependencies"] = []
    return {"tasks": tasks}
