"""``forgeflow dev``: the Temporal dev server, a worker and the API as children, supervised.

* Ports are checked first: a port another process holds (an orphan of an earlier run,
  say) refuses the start, naming the port and its holder; otherwise that process would
  answer in place of our own server, which failed to bind unseen.
* The children die with ``dev`` however it ends, SIGKILL included (PR_SET_PDEATHSIG).
* When a child ends on its own, ``dev`` says which one and how, then stops the others.
* While up, the stack is recorded (forgeflow/devstate.py) so that ``forgeflow keys …`` and
  ``forgeflow temporal-cli`` run elsewhere use its data and its Temporal.
* ``--fake-llm``: forgeflow-fake (agents/fake_llm.py) as one more child, the model provider of
  the worker and the API (``fake_llm_environment``), so agent mode runs offline, labelled fake."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import typer

from forgeflow import devstate
from forgeflow.devserver import dev_server_command
from forgeflow.settings import Settings, get_settings, load_dev_server_config
from forgeflow.supervise import describe_exit, die_with_parent, taken_ports

# How long each child may take to listen; the first start of Temporal creates its database.
START_TIMEOUT = 60.0
# USD per million tokens, made up: what `--fake-llm` prices forgeflow-fake's tokens at.
FAKE_PRICES = {"input": 1.0, "output": 2.0}


class StartFailed(Exception):
    pass


class Child:
    def __init__(self, name: str, cmd: list[str], preexec: Callable[[], None] | None) -> None:
        self.name = name
        # Its own session: Ctrl-C in the terminal reaches `dev` alone, which stops the
        # children in order (API, worker, then Temporal).
        self.proc = subprocess.Popen(cmd, start_new_session=True, preexec_fn=preexec)

    def ended(self) -> str | None:
        code = self.proc.poll()
        return None if code is None else f"the {self.name} (pid {self.proc.pid}) {describe_exit(code)}"


def temporal_command(port: int | None, ui_port: int | None) -> list[str]:
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return dev_server_command(
        load_dev_server_config(),
        data_dir=settings.data_dir.resolve(),
        namespace=settings.namespace,
        port=port,
        ui_port=ui_port,
    )


def _wait_for_port(host: str, port: int, child: Child, stopping: Callable[[], bool]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and not stopping():
        if (ended := child.ended()) is not None:
            raise StartFailed(f"{ended} before it listened on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    if not stopping():
        raise StartFailed(f"the {child.name} does not listen on {host}:{port} after {START_TIMEOUT:.0f} s")


def fake_llm_environment(port: int) -> dict[str, str]:
    """The ``FORGEFLOW_LLM_*`` settings that make forgeflow-fake on ``port`` the provider. Its
    model gets made-up prices (unless FORGEFLOW_LLM_PRICES says otherwise), so that usage shows
    a cost and a cost budget can run out, as with a real model."""
    from agents.fake_answers import FAKE_MODEL

    env = {
        "FORGEFLOW_LLM_BASE_URL": f"http://127.0.0.1:{port}/v1",
        "FORGEFLOW_LLM_API_KEY": "fake",
        "FORGEFLOW_LLM_MODEL": FAKE_MODEL,
    }
    if "FORGEFLOW_LLM_PRICES" not in os.environ:
        env["FORGEFLOW_LLM_PRICES"] = json.dumps({FAKE_MODEL: FAKE_PRICES})
    return env


def run_dev_stack(*, api_port: int, temporal_port: int, ui_port: int, fake_llm_port: int | None = None) -> int:
    from store.db import Database, upgrade_database
    from store.keys import create_key

    settings = get_settings()
    server = load_dev_server_config()
    problems = taken_ports(
        [
            ("Temporal gRPC", server.ip, temporal_port, "--temporal-port"),
            ("Temporal Web UI", server.ip, ui_port, "--ui-port"),
            ("API", settings.api_host, api_port, "--api-port"),
            *([("fake model", "127.0.0.1", fake_llm_port, "--fake-llm-port")] if fake_llm_port else []),
        ]
    )
    if problems:
        for problem in problems:
            typer.echo(f"forgeflow dev: {problem}", err=True)
        return 1
    upgrade_database(settings.resolved_database_url)
    children: list[Child] = []
    state: Path | None = None
    stopping = False

    def stop(*_args: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    me = [sys.executable, "-m", "forgeflow"]
    preexec = die_with_parent()
    try:
        temporal = Child("Temporal dev server", temporal_command(temporal_port, ui_port), preexec)
        children.append(temporal)
        _wait_for_port(server.ip, temporal_port, temporal, lambda: stopping)
        if fake_llm_port:
            # The worker and the API inherit the provider settings (the caller's environment).
            fake = Child("fake model", [sys.executable, "-m", "agents.fake_llm", "--port", str(fake_llm_port)], preexec)
            children.append(fake)
            _wait_for_port("127.0.0.1", fake_llm_port, fake, lambda: stopping)
        children.append(Child("worker", [*me, "worker"], preexec))
        api = Child("API", [*me, "api", "--port", str(api_port)], preexec)
        children.append(api)
        _wait_for_port(settings.api_host, api_port, api, lambda: stopping)
        if stopping:
            return 0

        db = Database(settings.resolved_database_url)
        with db.session() as session:
            # A real-looking address: it becomes the projects' author_email, and packaging
            # metadata refuses one without a dot in its domain (dev@localhost).
            key = create_key(session, owner_name="dev", email="dev@example.com", project_quota=settings.project_quota)
        db.dispose()
        base = f"http://{settings.api_host}:{api_port}"
        state = _record(settings, base)
        typer.echo(
            "\nforgeflow dev stack is up\n"
            f"  API          {base}/api/v1   (docs: {base}/docs)\n"
            f"  Temporal UI  http://{server.ip}:{ui_port}\n"
            f"  Temporal     {server.ip}:{temporal_port}   (forgeflow temporal-cli … talks to it)\n"
            f"  Data         {settings.data_dir.resolve()}   (forgeflow keys … uses it)\n"
            f"{_fake_llm_line(settings, fake_llm_port)}\n"
            f"{_activate_hint()}"
            f"  export DJASS_BASE_URL={base}/api/v1\n"
            f"  export DJASS_API_KEY={key.key}\n\n"
            "Ctrl-C stops everything.\n",
        )
        while not stopping:
            for child in children:
                if (ended := child.ended()) is not None:
                    typer.echo(f"forgeflow dev: {ended}; stopping the others", err=True)
                    return 1
            time.sleep(0.2)
        return 0
    except StartFailed as exc:
        typer.echo(f"forgeflow dev: {exc}; stopping the others", err=True)
        return 1
    finally:
        if state is not None:
            devstate.forget(state)
        _stop(children)


def _fake_llm_line(settings: Settings, port: int | None) -> str:
    if not port:
        return ""
    return (
        f"  Model        {settings.llm_model} at http://127.0.0.1:{port}/v1   (a FAKE model: canned answers,"
        " no LLM; for trying agent mode offline)\n"
    )


def _activate_hint() -> str:
    # ./scripts/dev runs .venv/bin/forgeflow without activating the virtualenv: the README's
    # other commands (forgeflow, temporal) are on PATH only once it is.
    bin_dir = Path(sys.executable).parent
    if shutil.which("forgeflow") == str(bin_dir / "forgeflow"):
        return ""
    return f"  Commands     source {bin_dir / 'activate'}   (puts forgeflow and temporal on PATH)\n\n"


def _stop(children: list[Child]) -> None:
    # API first so no new work arrives, then the worker, then the server (SIGINT: its own
    # graceful stop, as Ctrl-C in a terminal would).
    for child in reversed(children):
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGINT if child is children[0] else signal.SIGTERM)
    for child in reversed(children):
        try:
            child.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()


def _record(settings: Settings, api_base: str) -> Path | None:
    try:
        return devstate.record(
            devstate.DevStack(
                pid=os.getpid(),
                started=devstate.process_started(os.getpid()),
                cwd=os.getcwd(),
                data_dir=str(settings.data_dir.resolve()),
                database_url=devstate.shareable_database_url(settings.resolved_database_url),
                temporal_address=settings.resolved_temporal_address,
                namespace=settings.namespace,
                api_url=f"{api_base}/api/v1",
            )
        )
    except OSError as exc:  # a read-only home: the stack still runs, only unrecorded
        typer.echo(f"forgeflow dev: cannot record the stack in {devstate.state_dir()}: {exc}", err=True)
        return None
