"""What the API commands share: options, plain tables, and how a wait ends (exit codes)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from forgeflow.cli.client import EXIT_FAILED, EXIT_NOT_DONE
from forgeflow.cli.watch import GATES, TERMINAL, Downloaded

ProjectId = Annotated[int, typer.Argument(help="The project id.", min=1, show_default=False)]
Timeout = Annotated[float | None, typer.Option(help="Give up waiting after this many seconds (exit 5).", min=0)]
ThroughGates = Annotated[
    bool, typer.Option("--through-gates", help="Keep waiting while the project awaits answers or approval.")
]
Output = Annotated[
    Path | None, typer.Option("--output", "-o", help="File or directory (default: the server's name, here).")
]
Force = Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")]


def show_progress(as_json: bool) -> bool:
    return sys.stdout.isatty() and not as_json


def table(columns: list[str], rows: list[list[Any]]) -> None:
    """A plain table: no markup, highlighting or emoji; wide when piped, so rows stay whole."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    grid = Table(*columns, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for row in rows:
        grid.add_row(*(cell(v) for v in row))
    console = Console(markup=False, highlight=False, emoji=False, width=None if sys.stdout.isatty() else 200)
    with console.capture() as captured:
        console.print(grid)
    typer.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":")) if value else "-"
    return str(value) if value != "" else "-"


def fields(body: dict[str, Any]) -> None:
    table(["field", "value"], [[name, value] for name, value in body.items()])


def downloaded_json(saved: Downloaded) -> dict[str, Any]:
    return {"path": str(saved.path), "sha256": saved.sha256, "size": saved.size}


def finish(status: dict[str, Any], *, through_gates: bool) -> None:
    """After a wait: return if ready; exit 1 if failed or cancelled; exit 5 if the project
    waits at a gate (without --through-gates) or is still running (--timeout)."""
    state, project_id = status["status"], status["id"]
    if state in ("failed", "cancelled"):
        typer.echo(f"project {project_id} {state}: {status.get('error_message') or 'no reason given'}", err=True)
        raise typer.Exit(EXIT_FAILED)
    if state in GATES and not through_gates:
        if state == "awaiting_budget":  # agent mode: its model budget ran out
            how = f"POST /projects/{project_id}/budget (a higher budget) or `forgeflow projects cancel {project_id}`"
        else:
            action = "answer" if state == "awaiting_answers" else "approve"
            how = f"`forgeflow projects {action} {project_id}`"
        typer.echo(f"project {project_id} is {state}: {how} moves it on", err=True)
        raise typer.Exit(EXIT_NOT_DONE)
    if state not in TERMINAL:
        typer.echo(f"project {project_id} is still {state}; gave up waiting (--timeout)", err=True)
        raise typer.Exit(EXIT_NOT_DONE)
