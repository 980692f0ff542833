"""`forgeflow dev`, the README's first command, as a newcomer would run it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx

from forgeflow.ports import free_ports
from tests.api.test_quickstart import DJASS_REQUEST


def test_dev_stack_serves_the_quickstart_and_stops_cleanly(tmp_path):
    api_port, temporal_port, ui_port = free_ports(3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGEFLOW_")}
    # Its own record of running stacks (forgeflow/devstate.py), not this machine user's.
    env["XDG_RUNTIME_DIR"] = str(tmp_path)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "forgeflow",
            "dev",
            "--api-port",
            str(api_port),
            "--temporal-port",
            str(temporal_port),
            "--ui-port",
            str(ui_port),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = ""
        deadline = time.monotonic() + 90
        assert proc.stdout is not None
        while "Ctrl-C stops everything" not in output:
            assert time.monotonic() < deadline and proc.poll() is None, output
            output += proc.stdout.readline()
        # The stack logs every request (JSON access log): keep the pipe drained so no
        # child ever blocks on a full pipe while the test polls.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        key = re.search(r"DJASS_API_KEY=(\S+)", output).group(1)
        base = re.search(r"DJASS_BASE_URL=(\S+)", output).group(1)
        headers = {"X-API-Key": key}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            created = http.post("/projects", json=DJASS_REQUEST)
            assert created.status_code == 201, created.text
            project_id = created.json()["project"]["id"]
            assert http.get("/projects", params={"limit": 1}).json()["projects"][0]["id"] == project_id
            while (status := http.get(f"/projects/{project_id}/status").json())["status"] not in ("ready", "failed"):
                assert time.monotonic() < deadline + 60, status
                time.sleep(0.2)
            assert status["status"] == "ready", status
            assert http.get(f"/projects/{project_id}").json()["artifact_ready"] is True
            artifact = http.get(f"/projects/{project_id}/artifact")
            assert artifact.status_code == 200 and artifact.content[:2] == b"PK"
        ui = httpx.get(f"http://127.0.0.1:{ui_port}/", timeout=10)
        assert ui.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0
    # Every child is gone with it.
    for port in (api_port, temporal_port, ui_port):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"
