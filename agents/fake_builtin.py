"""forgeflow-fake's default answers to the built-in coding agent (agents/coding/builtin_agent.py),
for requests no test scripted (``forgeflow dev``, benchmarks): as the fake coding agent
(agents/fake_coder.py) does on disk, it writes ``<first scope dir>/<slug>.py`` through the
``write_file`` tool, then reports with ``submit_task``. It is no model and writes no real code."""

from __future__ import annotations

import re
from typing import Any

from agents.fake_coder import task_target

WRITE, REPORT = "write_file", "submit_task"


def builtin_step(tools: list[str], body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The tool to call and its arguments, for a request of the built-in agent; None for any
    other request. The first request writes the task's file; once a tool has answered, report."""
    if WRITE not in tools or REPORT not in tools:
        return None
    messages = body.get("messages", [])
    prompt = "\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "user")
    if not re.search(r"^# Task \d+ of \d+: \S+$", prompt, re.M):
        return None
    slug, folder = task_target(prompt)
    if any(m.get("role") == "tool" for m in messages):
        return REPORT, {"summary": f"built {slug}", "risks": [f"{slug}: untested (a fake model wrote it)"]}
    path = f"{folder}/{slug.replace('-', '_')}.py" if folder != "." else f"{slug.replace('-', '_')}.py"
    return WRITE, {"path": path, "content": f'"""Built by forgeflow-fake for {slug}."""\n\nTASK = {slug!r}\n'}
