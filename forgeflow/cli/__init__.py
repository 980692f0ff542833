"""The ``forgeflow`` command line."""

from __future__ import annotations

import sys

import typer
from pydantic import ValidationError

from forgeflow import devstate
from forgeflow.cli import generate, keys, projects, stack, templates, temporal_cli, update

app = typer.Typer(
    name="forgeflow",
    help="Durable project generation on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stack.register(app)
app.add_typer(keys.app, name="keys")
app.add_typer(projects.app, name="projects")
app.command("generate")(generate.generate)
app.command("templates")(templates.templates)
app.command("update")(update.update)
app.command("temporal-cli", context_settings=temporal_cli.CONTEXT, add_help_option=False)(temporal_cli.temporal_cli)


@app.callback()
def _beside_a_dev_stack(ctx: typer.Context) -> None:
    # Commands that work on the stack's own data or Temporal use the running `forgeflow dev`
    # stack's when the environment names none (forgeflow/devstate.py).
    command = ctx.invoked_subcommand
    if command not in ("keys", "temporal-cli") or "--help" in sys.argv:
        return
    stack = devstate.adopt(
        data=command == "keys",
        temporal=command == "temporal-cli",
        warn=lambda message: typer.echo(f"warning: {message}", err=True),
    )
    if stack is not None and command == "keys":
        typer.echo(
            f"using the running dev stack's data in {stack.data_dir} (pid {stack.pid}); "
            "set FORGEFLOW_DATA_DIR for another",
            err=True,
        )


def main() -> None:
    try:
        app()
    except ValidationError as exc:
        if exc.title != "Settings":
            raise
        # A bad FORGEFLOW_ variable: named, with what is wrong, instead of a traceback.
        for error in exc.errors():
            name = "FORGEFLOW_" + "_".join(str(part) for part in error["loc"]).upper()
            typer.echo(f"forgeflow: {name}: {error['msg']}", err=True)
        raise SystemExit(2) from None
