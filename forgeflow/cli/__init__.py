"""The ``forgeflow`` command line."""

from __future__ import annotations

import typer

from forgeflow.cli import generate, keys, projects, stack

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


def main() -> None:
    app()
