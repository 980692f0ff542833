"""The ``forgeflow`` command line."""

from __future__ import annotations

import typer

from forgeflow.cli import keys, stack

app = typer.Typer(
    name="forgeflow",
    help="Durable project generation on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stack.register(app)
app.add_typer(keys.app, name="keys")


def main() -> None:
    app()
