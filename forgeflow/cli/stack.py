"""``forgeflow dev``, ``temporal``, ``worker`` and ``api``: the stack's processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from forgeflow.devserver import dev_server_command
from forgeflow.settings import get_settings, load_dev_server_config

DataDir = Annotated[Path | None, typer.Option(help="Where the databases and artifacts live.")]


def _apply_data_dir(data_dir: Path | None) -> None:
    if data_dir is not None:
        os.environ["FORGEFLOW_DATA_DIR"] = str(data_dir.resolve())
        get_settings.cache_clear()


def _wait_for_port(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise typer.Exit(f"process {proc.args!r} exited with {proc.returncode}")  # type: ignore[arg-type]
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise typer.Exit(f"nothing listens on {host}:{port} after {timeout:.0f} s")  # type: ignore[arg-type]


def _temporal_cmd(port: int | None, ui_port: int | None) -> list[str]:
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return dev_server_command(
        load_dev_server_config(),
        data_dir=settings.data_dir.resolve(),
        namespace=settings.namespace,
        port=port,
        ui_port=ui_port,
    )


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
        cmd = _temporal_cmd(port, ui_port)
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

        from forgeflow.logs import configure_logging
        from store.db import upgrade_database

        settings = get_settings()
        # The same config in every uvicorn worker process; uvicorn's access log stays off
        # (forgeflow.access logs each request, redacted, path without the query string).
        log_config = configure_logging(settings.log_level, settings.log_format)
        upgrade_database(settings.resolved_database_url)
        uvicorn.run(
            "api.main:create_app",
            factory=True,
            host=host or settings.api_host,
            port=port or settings.api_port,
            workers=workers,
            log_config=log_config,
            log_level=settings.log_level.lower(),
            access_log=False,
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
    ) -> None:
        """Temporal dev server + worker + API, with a fresh dev API key. Ctrl-C stops all."""
        _apply_data_dir(data_dir)
        os.environ["FORGEFLOW_TEMPORAL_ADDRESS"] = f"127.0.0.1:{temporal_port}"
        os.environ["FORGEFLOW_API_PORT"] = str(api_port)
        get_settings.cache_clear()
        raise typer.Exit(run_dev_stack(api_port=api_port, temporal_port=temporal_port, ui_port=ui_port))


def run_dev_stack(*, api_port: int, temporal_port: int, ui_port: int) -> int:
    from store.db import upgrade_database
    from store.keys import create_key

    settings = get_settings()
    upgrade_database(settings.resolved_database_url)
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop(*_args: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    me = [sys.executable, "-m", "forgeflow"]
    try:
        temporal = subprocess.Popen(_temporal_cmd(temporal_port, ui_port), start_new_session=True)
        children.append(temporal)
        _wait_for_port("127.0.0.1", temporal_port, 60, temporal)
        children.append(subprocess.Popen([*me, "worker"], start_new_session=True))
        api = subprocess.Popen([*me, "api", "--port", str(api_port)], start_new_session=True)
        children.append(api)
        _wait_for_port(settings.api_host, api_port, 60, api)

        from store.db import Database

        db = Database(settings.resolved_database_url)
        with db.session() as session:
            key = create_key(session, owner_name="dev", email="dev@localhost", project_quota=settings.project_quota)
        db.dispose()
        base = f"http://{settings.api_host}:{api_port}"
        typer.echo(
            "\nforgeflow dev stack is up\n"
            f"  API          {base}/api/v1   (docs: {base}/docs)\n"
            f"  Temporal UI  http://127.0.0.1:{ui_port}\n"
            f"  Temporal     127.0.0.1:{temporal_port}\n"
            f"  Data         {settings.data_dir.resolve()}\n\n"
            f"  export DJASS_BASE_URL={base}/api/v1\n"
            f"  export DJASS_API_KEY={key.key}\n\n"
            "Ctrl-C stops everything.\n",
        )
        while not stopping:
            for child in children:
                if child.poll() is not None:
                    typer.echo(f"{child.args!r} exited with {child.returncode}; stopping", err=True)
                    return 1
            time.sleep(0.2)
        return 0
    finally:
        # API first so no new work arrives, then the worker, then the server.
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGINT if child is children[0] else signal.SIGTERM)
        for child in reversed(children):
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
