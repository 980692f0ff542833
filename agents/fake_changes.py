"""What forgeflow-fake answers, unscripted, in the phases of a run on demand (the data block
holds ``change_request``, agents.change_phase): no questions; the current spec with the
change written in; one new task for the change. Deterministic, made from the request's own
data, and marked as the fake's like every answer of it (agents.fake_answers)."""

from __future__ import annotations

import re
from typing import Any

from agents.fake_answers import BANNER
from agents.prompts import DATA_OPEN, read_data_block

# Where the spec phase's record (agents.activities.spec_documents) starts in a stored SPEC.md.
RECORD_HEADING = "\n## Clarifications"


def change_arguments(tool: str | None, body: dict[str, Any]) -> dict[str, Any] | None:
    """The fake's answer to a phase of a change; None when the request is no change's."""
    data = _data(body)
    change = data.get("change_request")
    if not isinstance(change, dict):
        return None
    if tool == "submit_questions":
        return {"questions": []}  # the change is clear enough: nothing to ask
    if tool == "submit_spec":
        return _spec(data, change)
    if tool == "submit_plan":
        return _plan(change)
    return None


def _data(body: dict[str, Any]) -> dict[str, Any]:
    for message in body.get("messages", []):
        content = message.get("content")
        if message.get("role") == "user" and isinstance(content, str) and DATA_OPEN in content:
            return read_data_block(content)
    return {}


def change_slug(text: str) -> str:
    """A task id made from the change's first words ("Add CSV export" -> add-csv-export)."""
    words = re.findall(r"[a-z0-9]+", text.lower())[:5]
    return "-".join(words)[:40].strip("-") or "change"


def _first_line(text: str) -> str:
    return " ".join(next((line for line in text.splitlines() if line.strip()), "").split())[:200] or "(empty)"


def _spec(data: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    current = data.get("current_spec") or {}
    run, text = change.get("run"), str(change.get("text", ""))
    body = str(current.get("SPEC.md") or f"# {data.get('project', {}).get('name', 'The project')}\n")
    body = body.split(RECORD_HEADING)[0].rstrip()
    quoted = "\n".join(f"> {line}".rstrip() for line in text.splitlines()) or ">"
    spec = f"{body}\n\n## Change for run {run}\n\n_{BANNER}_\n\nThe client asked for:\n\n{quoted}\n"
    acceptance = str(current.get("ACCEPTANCE.md") or "# Acceptance criteria\n").rstrip()
    acceptance += f"\n- [ ] Run {run}: {_first_line(text)}\n"
    return {
        "spec_md": spec,
        "acceptance_md": acceptance,
        "routes_md": str(current.get("ROUTES.md") or f"# Routes\n\n_{BANNER}_\n"),
        "data_md": str(current.get("DATA.md") or f"# Data model\n\n_{BANNER}_\n"),
    }


def _plan(change: dict[str, Any]) -> dict[str, Any]:
    slug = change_slug(str(change.get("text", "")))
    task = {
        "id": slug,
        "title": f"Run {change.get('run')}: {_first_line(str(change.get('text', '')))}",
        "instructions": f"{BANNER} Make the change the client asked for (the spec's last section).",
        "dependencies": [],
        "path_scope": [f"changes/{slug.replace('-', '_')}/**"],
        "expected_outputs": [],
    }
    return {"tasks": [task]}
