"""``forgeflow dev``, ``temporal``, ``worker`` and ``api``: the stack's processes."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from forgeflow.cli.dev import fake_llm_environment, run_dev_stack, temporal_command
from forgeflow.ports import free_port
from forgeflow.settings import get_settings

DataDir = Annotated[Path | None, typer.Option(help="Where the databases and artifacts live.")]


def _apply_data_dir(data_dir: Path | None) -> None:
    if data_dir is not None:
        os.environ["FORGEFLOW_DATA_DIR"] = str(data_dir.resolve())
        get_settings.cache_clear()


def exit_now(code: int) -> None:
    """Leave a short-lived command that talked to Temporal directly: the SDK's native runtime
    can abort the interpreter's own shutdown (sdk-python issue 300), so flush and exit here."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def register(app: typer.Typer) -> None:
    temporal_app = typer.Typer(help="The Temporal dev server (Web UI on), or `setup` for a cluster.")
    app.add_typer(temporal_app, name="temporal")

    @temporal_app.callback(invoke_without_command=True)
    def temporal(
        ctx: typer.Context,
        port: Annotated[int | None, typer.Option(help="gRPC port (default from temporal-dev.yaml).")] = None,
        ui_port: Annotated[int | None, typer.Option(help="Web UI port.")] = None,
        data_dir: DataDir = None,
    ) -> None:
        if ctx.invoked_subcommand is not None:
            return
        _apply_data_dir(data_dir)
        cmd = temporal_command(port, ui_port)
        os.execv(cmd[0], cmd)

    @temporal_app.command("setup")
    def temporal_setup() -> None:
        """Register forgeflow's search attributes on an existing cluster (idempotent)."""
        import asyncio

        from forgeflow.cluster import register_search_attributes
        from forgeflow.temporal import connect

        settings = get_settings()

        async def run() -> list[str]:
            client = await connect(settings)
            return await register_search_attributes(client, settings.namespace)

        try:
            added = asyncio.run(run())
        except RuntimeError as exc:  # connection refused and friends
            typer.echo(f"cannot reach Temporal at {settings.resolved_temporal_address}: {exc}", err=True)
            exit_now(4)
        typer.echo(f"registered: {', '.join(added)}" if added else "search attributes already registered")
        exit_now(0)

    @app.command()
    def worker() -> None:
        """Run a worker: the project workflow and its activities."""
        from forgeflow.logs import configure_logging
        from forgeflow.tracing import configure_tracing
        from forgeflow.worker import main as worker_main

        settings = get_settings()
        configure_logging(settings.log_level, settings.log_format)
        configure_tracing(settings, "forgeflow-worker")
        worker_main()

    @app.command()
    def api(
        port: Annotated[int | None, typer.Option(help="Port to serve on (default 8000).")] = None,
        host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
        workers: Annotated[int, typer.Option(help="uvicorn worker processes.", min=1)] = 1,
    ) -> None:
        """Serve the REST API."""
        import uvicorn

        from api.server import uvicorn_options
        from forgeflow.logs import configure_logging
        from store.db import upgrade_database

        settings = get_settings()
        # The same config in every uvicorn worker process; uvicorn's access log stays off
        # (forgeflow.access logs each request, redacted, path without the query string).
        log_config = configure_logging(settings.log_level, settings.log_format)
        upgrade_database(settings.resolved_database_url)
        uvicorn.run(
            "api.main:served_app",
            factory=True,
            host=host or settings.api_host,
            port=port or settings.api_port,
            workers=workers,
            log_config=log_config,
            log_level=settings.log_level.lower(),
            access_log=False,
            # Timeouts for slow clients and a cap on header size (api/server.py).
            **uvicorn_options(settings),
        )

    @app.command()
    def migrate() -> None:
        """Bring the database schema up to date."""
        from store.db import upgrade_database

        upgrade_database(get_settings().resolved_database_url)
        typer.echo("database is up to date")

    @app.command()
    def dev(
        api_port: Annotated[int, typer.Option(help="API port.")] = 8000,
        temporal_port: Annotated[int, typer.Option(help="Temporal gRPC port.")] = 7233,
        ui_port: Annotated[int, typer.Option(help="Temporal Web UI port.")] = 8233,
        data_dir: DataDir = None,
        fake_llm: Annotated[
            bool, typer.Option("--fake-llm", help="Agent mode offline: forgeflow-fake, a FAKE model, as the provider.")
        ] = False,
        fake_llm_port: Annotated[
            int | None,
            typer.Option(min=1, max=65535, help="forgeflow-fake's port (default: a free one); implies --fake-llm."),
        ] = None,
    ) -> None:
        """Temporal dev server + worker + API, with a fresh dev API key. Ctrl-C stops all."""
        _apply_data_dir(data_dir)
        os.environ["FORGEFLOW_TEMPORAL_ADDRESS"] = f"127.0.0.1:{temporal_port}"
        os.environ["FORGEFLOW_API_PORT"] = str(api_port)
        if fake_llm or fake_llm_port:
            fake_llm_port = fake_llm_port or free_port()
            os.environ.update(fake_llm_environment(fake_llm_port))
        get_settings.cache_clear()
        raise typer.Exit(
            run_dev_stack(api_port=api_port, temporal_port=temporal_port, ui_port=ui_port, fake_llm_port=fake_llm_port)
        )
