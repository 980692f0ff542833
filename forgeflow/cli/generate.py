"""``forgeflow generate``: create a project, wait for it, download its ZIP, print the path."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from forgeflow.cli.client import DEFAULT_URL, Api, ApiKey, ApiUrl, AsJson, body_of, handles_errors, parse_pairs
from forgeflow.cli.output import Force, Output, ThroughGates, Timeout, downloaded_json, finish, show_progress
from forgeflow.cli.watch import Polling, PollMax, PollStart, check_target, download, wait_for


@handles_errors
def generate(
    name: Annotated[str, typer.Option("--name", help="project_name.")],
    slug: Annotated[str | None, typer.Option("--slug", help="project_slug (default: from the name).")] = None,
    template: Annotated[str | None, typer.Option("--template", help="Template id (default djass-saas).")] = None,
    fields: Annotated[
        list[str] | None,
        typer.Option("--set", help="Any request field or template variable: key=value, or key:=JSON. Repeatable."),
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
    """Create a project, wait for it, download its ZIP; prints the ZIP's path.

    Exit 0 with the ZIP; 1 if the project failed or was cancelled; 5 if it waits at a
    gate (approve it, then `forgeflow projects wait` and `download`) or --timeout passed."""
    body: dict[str, Any] = parse_pairs(fields or [], param_hint="--set")
    body["project_name"] = name
    if slug is not None:
        body["project_slug"] = slug
    if template is not None:
        body["template"] = template
    if require_approval:
        body["require_approval"] = True
    check_target(output, force)  # before anything is created
    with Api(api_url, api_key) as api:
        project = body_of(api.post("/projects", json=body))["project"]
        project_id = project["id"]
        typer.echo(f"project {project_id} created ({project['slug']}); waiting for it", err=True)
        response = wait_for(
            api,
            project_id,
            polling=Polling(poll_start, poll_max),
            timeout=timeout,
            through_gates=through_gates,
            progress=show_progress(as_json),
        )
        state = body_of(response)
        saved = download(api, project_id, output=output, force=force) if state["status"] == "ready" else None
        if as_json:
            final = body_of(api.get(f"/projects/{project_id}"))
            artifact = None if saved is None else downloaded_json(saved)
            typer.echo(json.dumps({"project": final, "artifact": artifact}))
    if saved is None:
        finish(state, through_gates=through_gates)  # exits 1 or 5
        return
    if not as_json:
        typer.echo(str(saved.path))
