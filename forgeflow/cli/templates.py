"""``forgeflow templates [ID]``: what can be made, and what to send for it (``GET /templates``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from forgeflow.cli.client import DEFAULT_URL, Api, ApiKey, ApiUrl, AsJson, body_of, echo_raw, handles_errors
from forgeflow.cli.output import table


@handles_errors
def templates(
    template_id: Annotated[
        str | None, typer.Argument(help="One template: its variables.", show_default=False, metavar="[ID]")
    ] = None,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """The templates the API can use; with an ID, that template's variables.

    The variables are the create request's fields: `forgeflow generate --template ID --set name=value`."""
    with Api(api_url, api_key) as api:
        response = api.get("/templates" if template_id is None else f"/templates/{template_id}")
    if as_json:
        echo_raw(response)
        return
    body = body_of(response)
    if template_id is None:
        _list(body["templates"])
    else:
        _show(body)


def _list(found: list[dict[str, Any]]) -> None:
    rows = [
        [
            t["id"] + (" (default)" if t["default"] else ""),
            t["version"] or None,
            "yes" if t["trusted"] else "no",
            len(t["variables"]) if t["usable"] else None,
            t["title"] if t["usable"] else f"unusable: {t['problem']}",
        ]
        for t in found
    ]
    table(["id", "version", "trusted", "variables", "title"], rows)
    typer.echo("`forgeflow templates ID` shows a template's variables.")


def _show(template: dict[str, Any]) -> None:
    trust = "trusted: its hooks and checks run" if template["trusted"] else "untrusted: no hooks or check commands"
    typer.echo(f"{template['id']} {template['version']}: {template['title']} ({trust})")
    if template["description"]:
        typer.echo(template["description"])
    if not template["usable"]:
        typer.echo(f"unusable: {template['problem']}", err=True)
        return
    rows = [
        [
            v["name"],
            v["type"],
            v["default"],
            " | ".join(v["choices"]) if v["choices"] else None,
            v["help"] or v["prompt"],
        ]
        for v in template["variables"]
    ]
    table(["variable", "type", "default", "choices", "help"], rows)
