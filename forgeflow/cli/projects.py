"""``forgeflow projects ...`` and ``forgeflow generate``: the REST API, for scripts and people."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from forgeflow.cli.client import (
    DEFAULT_URL,
    EXIT_FAILED,
    EXIT_NOT_DONE,
    Api,
    ApiKey,
    ApiUrl,
    AsJson,
    body_of,
    echo_raw,
    handles_errors,
    parse_pairs,
)
from forgeflow.cli.watch import GATES, TERMINAL, Downloaded, Polling, PollMax, PollStart, download, follow_events
from forgeflow.cli.watch import list_events as page_events
from forgeflow.cli.watch import wait_for as poll

app = typer.Typer(help="Projects through the REST API (FORGEFLOW_API_URL, FORGEFLOW_API_KEY).", no_args_is_help=True)


class Status(StrEnum):
    queued = "queued"
    generating = "generating"
    awaiting_answers = "awaiting_answers"
    awaiting_approval = "awaiting_approval"
    ready = "ready"
    failed = "failed"
    cancelled = "cancelled"


ProjectId = Annotated[int, typer.Argument(help="The project id.", min=1, show_default=False)]
Timeout = Annotated[float | None, typer.Option(help="Give up waiting after this many seconds (exit 5).", min=0)]
ThroughGates = Annotated[
    bool, typer.Option("--through-gates", help="Keep waiting while the project awaits answers or approval.")
]
Output = Annotated[
    Path | None, typer.Option("--output", "-o", help="File or directory (default: the server's name, here).")
]
Force = Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")]


def _console() -> Any:
    from rich.console import Console

    # Plain text (no markup, highlighting or emoji), and wide when piped so rows stay whole.
    width = None if sys.stdout.isatty() else 200
    return Console(markup=False, highlight=False, emoji=False, width=width)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":")) if value else "-"
    return str(value) if value != "" else "-"


def _table(columns: list[str], rows: list[list[Any]]) -> None:
    from rich import box
    from rich.table import Table

    table = Table(*columns, box=box.SIMPLE_HEAD, pad_edge=False)
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    _console().print(table)


def _fields(body: dict[str, Any]) -> None:
    _table(["field", "value"], [[name, value] for name, value in body.items()])


def _project(project_id: int) -> str:
    return f"/projects/{project_id}"


def _finish(status: dict[str, Any], *, through_gates: bool) -> None:
    """Exit 1 for failed/cancelled, 5 for still running or waiting at a gate, else return."""
    state, project_id = status["status"], status["id"]
    if state in ("failed", "cancelled"):
        typer.echo(f"project {project_id} {state}: {status.get('error_message') or 'no reason given'}", err=True)
        raise typer.Exit(EXIT_FAILED)
    if state in GATES and not through_gates:
        action = "answer" if state == "awaiting_answers" else "approve"
        typer.echo(f"project {project_id} is {state}: `forgeflow projects {action} {project_id}` moves it on", err=True)
        raise typer.Exit(EXIT_NOT_DONE)
    if state not in TERMINAL:
        typer.echo(f"project {project_id} is still {state}; gave up waiting (--timeout)", err=True)
        raise typer.Exit(EXIT_NOT_DONE)


@app.command("list")
@handles_errors
def list_projects(
    status: Annotated[Status | None, typer.Option(help="Only projects in this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Page size.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Projects to skip (newest first).")] = 0,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """List projects, newest first."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if status is not None:
        params["status"] = status.value
    with Api(api_url, api_key) as api:
        response = api.get("/projects", params=params)
    if as_json:
        echo_raw(response)
        return
    page = body_of(response)
    columns = ["id", "name", "slug", "status", "artifact_ready", "created_at", "finished_at"]
    _table(columns, [[p.get(c) for c in columns] for p in page["projects"]])
    shown = len(page["projects"])
    first = page["offset"] + 1 if shown else 0
    more = f"; next page: --offset {page['offset'] + shown}" if page["has_next"] else ""
    typer.echo(f"{first}-{page['offset'] + shown} of {page['total']}{more}")


def _get(path: str, as_json: bool, api_url: str, api_key: str | None) -> dict[str, Any]:
    with Api(api_url, api_key) as api:
        response = api.get(path)
    if as_json:
        echo_raw(response)
        return {}
    body: dict[str, Any] = body_of(response)
    return body


@app.command()
@handles_errors
def show(project_id: ProjectId, as_json: AsJson = False, api_url: ApiUrl = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """The full project."""
    if body := _get(_project(project_id), as_json, api_url, api_key):
        _fields(body)


@app.command()
@handles_errors
def status(
    project_id: ProjectId, as_json: AsJson = False, api_url: ApiUrl = DEFAULT_URL, api_key: ApiKey = None
) -> None:
    """The light status body."""
    if body := _get(f"{_project(project_id)}/status", as_json, api_url, api_key):
        _fields(body)


@app.command()
@handles_errors
def questions(
    project_id: ProjectId, as_json: AsJson = False, api_url: ApiUrl = DEFAULT_URL, api_key: ApiKey = None
) -> None:
    """The open questions of a project awaiting answers."""
    body = _get(f"{_project(project_id)}/questions", as_json, api_url, api_key)
    if as_json:
        return
    if not body["questions"]:
        typer.echo("no open questions")
        return
    columns = ["id", "type", "question", "options", "default"]
    _table(columns, [[q.get(c) for c in columns] for q in body["questions"]])


def _act(project_id: int, action: str, body: dict[str, Any] | None, as_json: bool, url: str, key: str | None) -> None:
    with Api(url, key) as api:
        response = api.post(f"{_project(project_id)}/{action}", json=body)
    if as_json:
        echo_raw(response)
        return
    result = body_of(response)
    queued = "; accepted, the run applies it shortly" if result.get("queued") else ""
    typer.echo(f"project {result['id']}: {action} ok; status {result['status']}, phase {result['phase']}{queued}")


@app.command()
@handles_errors
def answer(
    project_id: ProjectId,
    pairs: Annotated[list[str] | None, typer.Argument(help="key=value, or key:=JSON for typed values.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="A JSON object of answers (key=value pairs win).")] = None,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Answer the open questions."""
    answers: dict[str, Any] = {}
    if file is not None:
        try:
            loaded = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(f"cannot read a JSON object from {file}: {exc}", param_hint="--file") from exc
        if isinstance(loaded, dict) and set(loaded) == {"answers"}:
            loaded = loaded["answers"]
        if not isinstance(loaded, dict):
            raise typer.BadParameter(f"{file} does not hold a JSON object", param_hint="--file")
        answers.update(loaded)
    answers.update(parse_pairs(pairs or [], param_hint="key=value"))
    if not answers:
        raise typer.BadParameter("give key=value pairs or --file answers.json", param_hint="key=value")
    _act(project_id, "answers", {"answers": answers}, as_json, api_url, api_key)


Notes = Annotated[str | None, typer.Option(help="Notes recorded with the decision.")]


@app.command()
@handles_errors
def approve(
    project_id: ProjectId,
    notes: Notes = None,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Approve the spec of a project awaiting approval."""
    _act(project_id, "approve", {"notes": notes} if notes else {}, as_json, api_url, api_key)


@app.command()
@handles_errors
def reject(
    project_id: ProjectId,
    notes: Annotated[str, typer.Option(help="Why; becomes the project's error message.")],
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Reject the spec: the project fails with the notes."""
    _act(project_id, "reject", {"notes": notes}, as_json, api_url, api_key)


def _simple_action(action: str, doc: str) -> None:
    @app.command(action, help=doc)
    @handles_errors
    def command(
        project_id: ProjectId, as_json: AsJson = False, api_url: ApiUrl = DEFAULT_URL, api_key: ApiKey = None
    ) -> None:
        _act(project_id, action, None, as_json, api_url, api_key)


_simple_action("cancel", "Cancel the run (the project ends cancelled).")
_simple_action("pause", "Start no new task until resumed.")
_simple_action("resume", "Start tasks again.")
_simple_action("retry", "A new run of a failed or cancelled project.")


@app.command()
@handles_errors
def wait(
    project_id: ProjectId,
    timeout: Timeout = None,
    through_gates: ThroughGates = False,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_URL,
    api_key: ApiKey = None,
    poll_start: PollStart = 2.0,
    poll_max: PollMax = 15.0,
) -> None:
    """Poll until ready (exit 0), failed or cancelled (1), or a gate or --timeout (5)."""
    with Api(api_url, api_key) as api:
        response = poll(
            api,
            project_id,
            polling=Polling(poll_start, poll_max),
            timeout=timeout,
            through_gates=through_gates,
            progress=sys.stdout.isatty() and not as_json,
        )
    body = body_of(response)
    if as_json:
        echo_raw(response)
    else:
        typer.echo(f"project {project_id}: {body['status']}")
    _finish(body, through_gates=through_gates)


def _downloaded_json(saved: Downloaded) -> dict[str, Any]:
    return {"path": str(saved.path), "sha256": saved.sha256, "size": saved.size}


@app.command("download")
@handles_errors
def download_artifact(
    project_id: ProjectId,
    output: Output = None,
    force: Force = False,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Download the ZIP, checked against its X-Content-SHA256; prints the path."""
    with Api(api_url, api_key) as api:
        saved = download(api, project_id, output=output, force=force)
    typer.echo(json.dumps({"id": project_id, **_downloaded_json(saved)}) if as_json else str(saved.path))


@app.command()
@handles_errors
def events(
    project_id: ProjectId,
    after: Annotated[int, typer.Option(min=0, help="Only events with a larger id.")] = 0,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Tail the stream until the project ends.")] = False,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_URL,
    api_key: ApiKey = None,
    poll_start: PollStart = 2.0,
    poll_max: PollMax = 15.0,
) -> None:
    """The project's events; --json prints one API event object per line."""

    def print_event(event: dict[str, Any], raw: str | None = None) -> None:
        if as_json:
            typer.echo(raw if raw is not None else json.dumps(event, separators=(",", ":")))
            return
        payload = json.dumps(event.get("payload") or {}, separators=(",", ":"))
        task = event.get("task_id") or "-"
        typer.echo(f"{event['id']:>5}  {event['created_at']}  {event['type']:<24} {task:<12} {payload}")

    with Api(api_url, api_key) as api:
        if not follow:
            for event in page_events(api, project_id, after=after):
                print_event(event)
            return
        follow_events(
            api,
            project_id,
            after=after,
            polling=Polling(poll_start, poll_max),
            emit=lambda e: print_event(json.loads(e.data), e.data),
        )


@handles_errors
def generate(
    name: Annotated[str, typer.Option("--name", help="project_name.")],
    slug: Annotated[str | None, typer.Option("--slug", help="project_slug (default: from the name).")] = None,
    template: Annotated[str | None, typer.Option("--template", help="Template id (default djass-saas).")] = None,
    settings: Annotated[
        list[str] | None, typer.Option("--set", help="Any request field: key=value, or key:=JSON. Repeatable.")
    ] = None,
    require_approval: Annotated[bool, typer.Option("--require-approval", help="Gate on spec approval.")] = False,
    timeout: Timeout = None,
    through_gates: ThroughGates = False,
    output: Output = None,
    force: Force = False,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_URL,
    api_key: ApiKey = None,
    poll_start: PollStart = 2.0,
    poll_max: PollMax = 15.0,
) -> None:
    """Create a project, wait for it, download its ZIP; prints the ZIP's path."""
    body: dict[str, Any] = parse_pairs(settings or [], param_hint="--set")
    body["project_name"] = name
    if slug is not None:
        body["project_slug"] = slug
    if template is not None:
        body["template"] = template
    if require_approval:
        body["require_approval"] = True
    with Api(api_url, api_key) as api:
        project = body_of(api.post("/projects", json=body))["project"]
        project_id = project["id"]
        typer.echo(f"project {project_id} created ({project['slug']}); waiting", err=True)
        polling = Polling(poll_start, poll_max)
        progress = sys.stdout.isatty() and not as_json
        state = body_of(
            poll(api, project_id, polling=polling, timeout=timeout, through_gates=through_gates, progress=progress)
        )
        saved = download(api, project_id, output=output, force=force) if state["status"] == "ready" else None
        if as_json:
            final = body_of(api.get(_project(project_id)))
            typer.echo(json.dumps({"project": final, "artifact": saved and _downloaded_json(saved)}))
    if saved is None:
        _finish(state, through_gates=through_gates)
        return
    if not as_json:
        typer.echo(str(saved.path))
