"""The coding agents' doubles: small Python programs, written by a test into a directory put
on PATH, that print what the real tools print (Claude Code's JSON result, codex's JSONL
events, a command's last-line report) and really write into the work tree."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from engine.sandbox import SandboxConfig, unavailable_reason

# CI installs bubblewrap and fails without it; elsewhere these tests are skipped.
WHY_NOT = unavailable_reason(SandboxConfig())
needs_bwrap = pytest.mark.skipif(WHY_NOT is not None and not os.environ.get("CI"), reason=str(WHY_NOT))

# Every double starts so: what it was given (argv, the prompt on stdin) goes in the work tree.
PROLOGUE = """\
import json, os, pathlib, sys
ARGV = sys.argv[1:]
PROMPT = sys.stdin.read()
pathlib.Path("given.json").write_text(json.dumps({"argv": ARGV, "stdin": PROMPT}))
"""


def install(bin_dir: Path, name: str, body: str) -> Path:
    """An executable ``name`` in ``bin_dir`` running ``body`` after PROLOGUE."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text(f"#!{sys.executable}\n{PROLOGUE}{textwrap.dedent(body)}")
    path.chmod(0o755)
    return path


def given(workdir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((workdir / "given.json").read_text())
    return data


def claude_result(**fields: Any) -> str:
    """Claude Code's result object, as ``claude -p --output-format json`` prints it."""
    result = {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "duration_ms": 8123,
        "duration_api_ms": 7001,
        "num_turns": 4,
        "result": "Added hello.py.",
        "stop_reason": "end_turn",
        "session_id": "0b1c2d3e-1111-2222-3333-444455556666",
        "total_cost_usd": 0.0421,
        "usage": {
            "input_tokens": 120,
            "cache_creation_input_tokens": 2000,
            "cache_read_input_tokens": 30000,
            "output_tokens": 640,
            "server_tool_use": {"web_search_requests": 0},
            "service_tier": "standard",
        },
        "permission_denials": [],
        "uuid": str(uuid.uuid4()),
    }
    return json.dumps({**result, **fields})


def codex_events(*turns: tuple[int, int, int], message: str = "Done.") -> str:
    """``codex exec --json``'s JSONL: a thread, then per turn its items and usage
    (input, cached input, output tokens)."""
    events: list[dict[str, Any]] = [{"type": "thread.started", "thread_id": "0199a213-81c0-7800-8aa1-bbab2a035a53"}]
    for n, (prompt, cached, output) in enumerate(turns):
        events += [
            {"type": "turn.started"},
            {"type": "item.completed", "item": {"id": f"item_{n}a", "type": "reasoning", "text": "**Looking**"}},
            {
                "type": "item.completed",
                "item": {
                    "id": f"item_{n}b",
                    "type": "command_execution",
                    "command": "bash -lc ls",
                    "aggregated_output": "README.md\n",
                    "exit_code": 0,
                    "status": "completed",
                },
            },
            {
                "type": "item.completed",
                "item": {"id": f"item_{n}c", "type": "agent_message", "text": f"{message} ({n})"},
            },
            {
                "type": "turn.completed",
                "usage": {"input_tokens": prompt, "cached_input_tokens": cached, "output_tokens": output},
            },
        ]
    return "\n".join(json.dumps(e) for e in events)


def processes_with(marker: str) -> list[int]:
    """Host pids whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # gone meanwhile
    return found
