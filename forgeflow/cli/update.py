"""``forgeflow update PROJECT --to VERSION``: update a project to another version of its
template through the REST API, wait for the update run, and with ``--repo PATH`` pull the
new history into a local clone, where git merges the template's changes with the user's
(conflicts left as git leaves them, to resolve as for any merge)."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
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
    CliFailure,
    body_of,
    handles_errors,
    parse_pairs,
)
from forgeflow.cli.output import ProjectId, Timeout
from forgeflow.cli.watch import Polling

TERMINAL = ("ready", "failed", "cancelled")
Repo = Annotated[
    Path | None,
    typer.Option(
        "--repo",
        help="A local clone of the project (from its bundle or its ZIP with .git): the update is pulled into it.",
        file_okay=False,
    ),
]


def _wait_for_run(api: Api, project_id: int, run: int, *, timeout: float | None) -> dict[str, Any]:
    deadline = None if timeout is None else time.monotonic() + timeout
    delays = Polling(start=0.5, maximum=5.0).intervals()
    while True:
        body: dict[str, Any] = body_of(api.get(f"/projects/{project_id}/runs/{run}"))
        if body["status"] in TERMINAL:
            return body
        if deadline is not None and time.monotonic() >= deadline:
            raise CliFailure(f"run {run} is still {body['status']} after {timeout:g} s", EXIT_NOT_DONE)
        time.sleep(next(delays))


def _pull(api: Api, project_id: int, repo: Path) -> str:
    """Fetch the project's bundle and merge its main into the clone's current branch."""
    with tempfile.TemporaryDirectory(prefix="forgeflow-update-") as tmp:
        bundle = Path(tmp) / "project.bundle"
        bundle.write_bytes(api.get(f"/projects/{project_id}/bundle").content)
        argv = ["git", "-C", str(repo), "pull", "--no-rebase", "--no-edit", str(bundle), "main"]
        pulled = subprocess.run(argv, capture_output=True, text=True, check=False)
    output = (pulled.stdout + pulled.stderr).strip()
    if pulled.returncode != 0:
        raise CliFailure(
            f"git pull did not finish in {repo}:\n{output}\n"
            "resolve the conflicts and commit, as for any merge (or `git merge --abort`)",
            EXIT_FAILED,
        )
    return output


@handles_errors
def update(
    project_id: ProjectId,
    to: Annotated[str, typer.Option("--to", help="The template version: a tag, branch or commit.")],
    answer: Annotated[
        list[str] | None,
        typer.Option("--answer", "-a", help="An answer the new version asks for (key=value or key:=JSON); repeat it."),
    ] = None,
    repo: Repo = None,
    timeout: Timeout = None,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Update a project to another version of its template, and pull it into a clone."""
    if repo is not None and not (repo / ".git").exists():  # before anything starts
        raise CliFailure(f"{repo} is not a git clone (no .git): clone the project's bundle first")
    body = {"template_version": to, "answers": parse_pairs(answer or [], param_hint="--answer")}
    with Api(api_url, api_key) as api:
        started = body_of(api.post(f"/projects/{project_id}/update", json=body))
        run = int(started["run"])
        if not as_json:
            typer.echo(f"project {project_id}: update run {run} to {to} started", err=True)
        ended = _wait_for_run(api, project_id, run, timeout=timeout)
        if ended["status"] != "ready":
            raise CliFailure(f"update run {run} {ended['status']}: {ended.get('error_message') or 'no reason given'}")
        pulled = _pull(api, project_id, repo) if repo is not None else None
    if as_json:
        typer.echo(json.dumps({"project_id": project_id, "run": ended, "pulled": pulled}, indent=2, sort_keys=True))
        return
    typer.echo(f"project {project_id}: run {run} ready at {to}")
    if repo is not None:
        typer.echo(f"merged into {repo}" + (f":\n{pulled}" if pulled else ""))
