"""``forgeflow projects ...``: the REST API, for scripts (--json) and people (tables)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from forgeflow.cli.client import (
    DEFAULT_URL,
    Api,
    ApiKey,
    ApiUrl,
    AsJson,
    body_of,
    echo_raw,
    handles_errors,
    parse_pairs,
)
from forgeflow.cli.output import (
    Force,
    Output,
    ProjectId,
    ThroughGates,
    Timeout,
    downloaded_json,
    fields,
    finish,
    show_progress,
    table,
)
from forgeflow.cli.watch import Polling, PollMax, PollStart, download, follow_events, settle
from forgeflow.cli.watch import list_events as page_events
from forgeflow.cli.watch import wait_for as poll

app = typer.Typer(help="Projects through the REST API (FORGEFLOW_API_URL, FORGEFLOW_API_KEY).", no_args_is_help=True)


class Status(StrEnum):
    queued = "queued"
    generating = "generating"
    awaiting_answers = "awaiting_answers"
    awaiting_approval = "awaiting_approval"
    awaiting_budget = "awaiting_budget"
    ready = "ready"
    failed = "failed"
    cancelled = "cancelled"


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
    table(columns, [[p.get(c) for c in columns] for p in page["projects"]])
    shown, offset = len(page["projects"]), page["offset"]
    more = f"; next page: --offset {offset + shown}" if page["has_next"] else ""
    typer.echo(f"{offset + 1}-{offset + shown} of {page['total']}{more}" if shown else f"none here of {page['total']}")


def _project(project_id: int) -> str:
    return f"/projects/{project_id}"


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
        fields(body)


@app.command()
@handles_errors
def status(
    project_id: ProjectId, as_json: AsJson = False, api_url: ApiUrl = DEFAULT_URL, api_key: ApiKey = None
) -> None:
    """The light status body."""
    if body := _get(f"{_project(project_id)}/status", as_json, api_url, api_key):
        fields(body)


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
    table(columns, [[q.get(c) for c in columns] for q in body["questions"]])


# What an action moves a project out of: the command returns once /status shows it
# (at most 10 s), so `forgeflow projects approve 7 && forgeflow projects wait 7` is safe.
LEAVES = {
    "answers": ("awaiting_answers",),
    "approve": ("awaiting_approval",),
    "reject": ("awaiting_approval",),
    "retry": ("failed", "cancelled"),
}


def _act(project_id: int, action: str, body: dict[str, Any] | None, as_json: bool, url: str, key: str | None) -> None:
    with Api(url, key) as api:
        response = api.post(f"{_project(project_id)}/{action}", json=body)
        result = body_of(response)
        state = settle(api, project_id, leaving=LEAVES[action]) if action in LEAVES else result["status"]
    if action in LEAVES and state in LEAVES[action]:
        typer.echo(f"warning: project {project_id} still shows {state}; is a worker running?", err=True)
    if as_json:
        echo_raw(response)
        return
    # Queued as a signal (no worker answered) or accepted for later (a cancel not stored yet).
    pending = result.get("queued") or result.get("accepted")
    later = " (accepted; the run applies it shortly)" if pending and action not in LEAVES else ""
    typer.echo(f"project {project_id}: {action} ok; status {state}{later}")


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
            progress=show_progress(as_json),
        )
    body = body_of(response)
    if as_json:
        echo_raw(response)
    else:
        typer.echo(f"project {project_id}: {body['status']}")
    finish(body, through_gates=through_gates)


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
    typer.echo(json.dumps({"id": project_id, **downloaded_json(saved)}) if as_json else str(saved.path))


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
