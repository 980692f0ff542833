"""What each kind of coding agent prints on stdout, read back: Claude Code's JSON result
object (``claude -p --output-format json``), codex's JSONL events (``codex exec --json``),
and a command's optional last-line report. Only the last bytes of stdout are kept
(engine.sandbox.STDOUT_LIMIT); ``dropped`` says how many went before them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SUMMARY_CHARS = 20_000
LAST_LINE_BYTES = 1 << 20  # where a command's report line is looked for
COMMAND_REPORT = (
    'a JSON object {"usage": {"input_tokens": int, "output_tokens": int}, "cost_usd": number,'
    ' "summary": str, "risks": [str]} (every key optional)'
)


@dataclass
class Report:
    summary: str = ""
    input_tokens: int = 0  # all of them, cached or not
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float | None = None
    session_id: str | None = None
    num_turns: int | None = None
    risks: list[str] = field(default_factory=list)
    failure: str | None = None  # the agent's own word that it failed
    unreadable: str | None = None  # its stdout is not what its kind prints


class _Lax(BaseModel):
    model_config = ConfigDict(extra="ignore")  # tools add fields; these are what is read


class ClaudeUsage(_Lax):
    input_tokens: int | None = Field(default=None, ge=0)
    output_tokens: int | None = Field(default=None, ge=0)
    cache_creation_input_tokens: int | None = Field(default=None, ge=0)
    cache_read_input_tokens: int | None = Field(default=None, ge=0)


class ClaudeResult(_Lax):
    type: Literal["result"]
    subtype: str = ""
    is_error: bool = False
    result: str | None = None
    session_id: str | None = None
    num_turns: int | None = Field(default=None, ge=0)
    total_cost_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    usage: ClaudeUsage = Field(default_factory=ClaudeUsage)


class CodexUsage(_Lax):
    input_tokens: int = Field(default=0, ge=0)  # the cached ones included (OpenAI's count)
    cached_input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)


class CommandUsage(_Lax):
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)


class CommandReport(_Lax):
    usage: CommandUsage = Field(default_factory=CommandUsage)
    cost_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    summary: str = ""
    risks: list[str] = Field(default_factory=list)


def bounded(text: str, limit: int = SUMMARY_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit]}\n... ({len(text) - limit} more characters cut)"


def stdout_text(path: Path, dropped: int, *, last: int | None = None) -> str:
    """Stdout as text (its ``last`` bytes only, if given), from its first whole line."""
    if not path.exists():
        return ""
    with path.open("rb") as file:
        size = file.seek(0, 2)
        start = 0 if last is None else max(0, size - last)
        file.seek(start)
        text = file.read().decode("utf-8", "replace")
    # What was cut went mid-line: the first line left is a fragment.
    if dropped or start:
        return text.split("\n", 1)[1] if "\n" in text else ""
    return text


def stdout_lines(path: Path, dropped: int) -> Iterator[str]:
    """Line by line, never the whole of it in memory at once."""
    if not path.exists():
        return
    with path.open("rb") as file:
        if dropped:
            file.readline()  # a fragment: what was cut went mid-line
        for line in file:
            yield line.decode("utf-8", "replace")


def _objects_from_end(text: str) -> list[dict[str, Any]]:
    """The JSON objects of ``text``: the whole of it, or its lines, last first."""
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, dict):
        return [whole]
    if isinstance(whole, list):  # --verbose prints every message, the result last
        return [item for item in reversed(whole) if isinstance(item, dict)]
    found = []
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict):
                found.append(item)
    return found


def _cut(dropped: int) -> str:
    return f" (the first {dropped / (1 << 20):.1f} MiB of its stdout were cut: it printed too much)" if dropped else ""


def read_claude(path: Path, dropped: int) -> Report:
    raw = next((item for item in _objects_from_end(stdout_text(path, dropped)) if item.get("type") == "result"), None)
    expected = 'Claude Code\'s JSON result (an object with "type": "result") on stdout'
    if raw is None:
        return Report(unreadable=f"expected {expected}; found none{_cut(dropped)}")
    try:
        result = ClaudeResult.model_validate(raw)
    except ValidationError as exc:
        return Report(unreadable=f"expected {expected}: {_first(exc)}")
    usage = result.usage
    writes, reads = usage.cache_creation_input_tokens or 0, usage.cache_read_input_tokens or 0
    report = Report(
        summary=bounded(result.result or ""),
        # Anthropic's input_tokens leaves the cached ones out; forgeflow's count has them all.
        input_tokens=(usage.input_tokens or 0) + writes + reads,
        output_tokens=usage.output_tokens or 0,
        cache_read_tokens=reads,
        cache_write_tokens=writes,
        cost_usd=result.total_cost_usd,
        session_id=result.session_id,
        num_turns=result.num_turns,
    )
    if result.is_error:
        text = bounded(result.result or "", 2000)
        report.failure = f"claude-code reported an error ({result.subtype or 'error'}): {text}"
    elif result.subtype not in ("", "success"):  # error_max_turns, error_max_budget_usd: not is_error
        report.failure = f"claude-code stopped before it was done: {result.subtype}"
    return report


def read_codex(path: Path, dropped: int) -> Report:
    report = Report(num_turns=0)
    failures: list[str] = []
    last_error: str | None = None
    for line in stdout_lines(path, dropped):
        try:
            event = json.loads(line)
        except ValueError:
            continue  # not an event: codex's or a tool's log
        if not isinstance(event, dict):
            continue
        kind, item = event.get("type"), event.get("item")
        if kind == "thread.started" and isinstance(event.get("thread_id"), str):
            report.session_id = event["thread_id"]
        elif kind == "turn.completed":
            try:
                usage = CodexUsage.model_validate(event.get("usage"))
            except ValidationError as exc:
                report.unreadable = f"a turn.completed event without token counts in its usage: {_first(exc)}"
                continue
            report.input_tokens += usage.input_tokens
            report.cache_read_tokens += usage.cached_input_tokens
            report.output_tokens += usage.output_tokens
            report.num_turns = (report.num_turns or 0) + 1
            last_error = None  # a later turn went through: what failed before was retried
        elif kind == "turn.failed":
            failures.append(_message(event.get("error")))
        elif kind == "error":
            last_error = _message(event)
        elif kind == "item.completed" and isinstance(item, dict) and item.get("type") == "agent_message":
            report.summary = bounded(str(item.get("text") or ""))
    if last_error is not None:
        failures.append(last_error)
    if failures:
        report.failure = "codex failed: " + "; ".join(bounded(f, 1000) for f in failures)
    if not report.num_turns and report.unreadable is None:
        expected = "codex exec --json events (turn.completed, with usage) on stdout"
        report.unreadable = f"expected {expected}; found none{_cut(dropped)}"
    elif dropped:  # every turn's usage counts: those cut cannot be added up
        report.unreadable = f"codex's token usage cannot be added up{_cut(dropped)}"
    return report


def read_command(path: Path, dropped: int) -> Report:
    lines = [line for line in stdout_text(path, dropped, last=LAST_LINE_BYTES).splitlines() if line.strip()]
    try:
        last = json.loads(lines[-1]) if lines else None
    except ValueError:
        last = None
    if not isinstance(last, dict) or not {"usage", "cost_usd", "summary", "risks"} & last.keys():
        return Report()  # no report: all of stdout was its log
    try:
        report = CommandReport.model_validate(last)
    except ValidationError as exc:
        return Report(unreadable=f"its last line of stdout is JSON, but not {COMMAND_REPORT}: {_first(exc)}")
    return Report(
        summary=bounded(report.summary),
        input_tokens=report.usage.input_tokens,
        output_tokens=report.usage.output_tokens,
        cost_usd=report.cost_usd,
        risks=[bounded(risk, 2000) for risk in report.risks[:100]],
    )


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


def _message(error: Any) -> str:
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return json.dumps(error)[:1000]
