"""What a hook in the sandbox cannot reach: the worker's data dir (secret key, SQLite
database), the network, the worker's environment, anything after it ends. Where the sandbox
is what keeps it out, the same hook run unsandboxed does reach it: the test can fail."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from engine.hooks import run_check, run_hook
from engine.sandbox import SandboxConfig, unavailable_reason
from forgeflow.settings import Settings
from forgeflow.worker import sandbox_config
from store.db import Database
from store.webhooks import load_cipher

PROBE = Path(__file__).parents[1] / "fixtures" / "templates" / "sandbox-probe"
UNSANDBOXED = SandboxConfig(mode="off")
WORKER_SECRET = "sk-worker-secret-do-not-leak"
# CI installs bubblewrap (.ci/run) and fails without it; elsewhere these tests are skipped.
WHY_NOT = unavailable_reason(SandboxConfig())
needs_bwrap = pytest.mark.skipif(WHY_NOT is not None and not os.environ.get("CI"), reason=str(WHY_NOT))
pytestmark = needs_bwrap


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A real data dir: the webhook key and a migrated SQLite database in it."""
    data = tmp_path / "data"
    data.mkdir()
    load_cipher(None, data)
    database = Database(f"sqlite:///{data / 'forgeflow.db'}")
    database.migrate()
    database.dispose()
    assert (data / "secret.key").stat().st_size > 0 and (data / "forgeflow.db").stat().st_size > 0
    return data


@pytest.fixture
def sandbox(data_dir: Path) -> SandboxConfig:
    """The worker's own configuration for this data dir."""
    return sandbox_config(Settings(data_dir=data_dir, database_url=None))


def run_probe(data_dir: Path, config: SandboxConfig, **probe: Any) -> dict[str, Any]:
    """The probe hook, run where the worker runs hooks: a scratch dir under the data dir."""
    project = data_dir / "work" / f"ff-{uuid.uuid4().hex[:8]}" / "project"
    project.mkdir(parents=True)
    (project / "app.py").write_text("")
    values = {"project_name": "Probe", "project_slug": "probe", "probe_paths": "", "probe_port": "9"}
    context = {"cookiecutter": {**values, "probe_marker": "", **{k: str(v) for k, v in probe.items()}}}
    assert run_hook(PROBE, "post_gen_project", project, context, sandbox=config, trusted=True) == [
        "post_gen_project.py"
    ]
    report: dict[str, Any] = json.loads((project / "PROBE.json").read_text())
    assert (project / "PROBE.json").stat().st_uid == os.getuid()  # the worker owns what the hook wrote
    return report


def secrets_of(data_dir: Path) -> str:
    return os.pathsep.join(str(data_dir / name) for name in ("secret.key", "forgeflow.db"))


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # gone meanwhile
    return found


@contextmanager
def listening_server() -> Iterator[int]:
    """A real server on 127.0.0.1 answering 'hello' to every connection."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"hello")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        done.set()
        thread.join()
        server.close()


def test_a_hook_reads_neither_the_secret_key_nor_the_database(data_dir, sandbox):
    outside = run_probe(data_dir, UNSANDBOXED, probe_paths=secrets_of(data_dir))
    inside = run_probe(data_dir, sandbox, probe_paths=secrets_of(data_dir))
    for name in ("secret.key", "forgeflow.db"):
        assert outside["reads"][str(data_dir / name)]["ok"], "the probe looks in the right place"
        read = inside["reads"][str(data_dir / name)]
        assert "FileNotFoundError" in read.get("error", ""), read
    # Nor under any other directory above the project.
    assert [path for path, read in inside["reads"].items() if read["ok"]] == []


def test_the_data_dir_stays_hidden_under_a_mounted_directory(tmp_path):
    """A data dir inside a read-only mount (a toolchain's, the interpreter's) is covered."""
    toolchain = tmp_path / "opt"
    (toolchain / "bin").mkdir(parents=True)
    (toolchain / "bin" / "tool").write_text("a tool")
    data = toolchain / "data"
    data.mkdir()
    load_cipher(None, data)
    config = SandboxConfig(read_only=(toolchain,), hidden=(data,))
    paths = f"{toolchain / 'bin' / 'tool'}{os.pathsep}{data / 'secret.key'}"
    inside = run_probe(tmp_path, config, probe_paths=paths)
    assert inside["reads"][str(toolchain / "bin" / "tool")] == {"ok": True, "value": 6}
    # Not there at all: that the key is also the worker's, mode 0600, is not what hides it.
    read = inside["reads"][str(data / "secret.key")]
    assert "FileNotFoundError" in read.get("error", ""), read


def test_a_hook_cannot_open_a_socket_unless_the_network_is_allowed(data_dir, sandbox):
    with listening_server() as port:
        outside = run_probe(data_dir, UNSANDBOXED, probe_port=port)
        inside = run_probe(data_dir, sandbox, probe_port=port)
        allowed = run_probe(data_dir, SandboxConfig(network=True), probe_port=port)
    assert outside["connect"] == {"ok": True, "value": "hello"}
    assert not inside["connect"]["ok"], inside["connect"]
    assert allowed["connect"] == {"ok": True, "value": "hello"}


def test_a_hook_sees_none_of_the_workers_environment(data_dir, sandbox, monkeypatch):
    monkeypatch.setenv("FORGEFLOW_LLM_API_KEY", WORKER_SECRET)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", WORKER_SECRET)
    monkeypatch.setenv("FORGEFLOW_DATA_DIR", str(data_dir))
    env = run_probe(data_dir, sandbox)["env"]
    assert set(env) <= {"PATH", "HOME", "LANG", "LC_ALL", "PYTHONDONTWRITEBYTECODE", "PWD"}
    assert WORKER_SECRET not in json.dumps(env) and str(data_dir) not in env["HOME"]
    assert env["HOME"] == "/tmp"  # private: a tmpfs of its own


def test_nothing_a_hook_starts_outlives_it(data_dir, sandbox):
    marker = f"ff-sleeper-{uuid.uuid4().hex}"
    run_probe(data_dir, UNSANDBOXED, probe_marker=marker)
    escaped = processes_with(marker)
    for pid in escaped:
        os.kill(pid, signal.SIGKILL)
    assert escaped, "unsandboxed, the sleeper survives the hook"
    marker = f"ff-sleeper-{uuid.uuid4().hex}"
    run_probe(data_dir, sandbox, probe_marker=marker)
    assert processes_with(marker) == []


def test_a_normal_hook_writes_the_project_and_runs_python(data_dir, sandbox):
    report = run_probe(data_dir, sandbox)
    assert report["python"] == {"ok": True, "value": "42"}
    if os.geteuid() == 0:
        assert report["uid"] == sandbox.uid  # never root inside


# What a check sees of AWS: variables, what boto3's own chain finds, and a file by its path.
AWS_PROBE = """
import json, os, sys
import boto3
found = boto3.session.Session().get_credentials()
try:
    with open(sys.argv[1]) as fh:
        file = fh.read()
except OSError:
    file = None
print(json.dumps({"env": sorted(k for k in os.environ if k.startswith("AWS")),
                  "credentials": None if found is None else found.access_key, "file": file}))
"""


def test_a_check_finds_none_of_the_workers_aws_credentials(data_dir, sandbox, monkeypatch):
    """The S3 artifact store's credentials stay with the worker: none in a check's
    environment, none boto3's own chain can find, and a credentials file under the data dir
    is out of sight, and so, with no network, is an instance role (unsandboxed, the same
    check reads the file: the sandbox is what hides it)."""
    credentials = data_dir / "aws-credentials"
    credentials.write_text(f"[default]\naws_access_key_id = AKIAWORKER\naws_secret_access_key = {WORKER_SECRET}\n")
    worker_env = {
        "AWS_ACCESS_KEY_ID": "AKIAWORKER",
        "AWS_SECRET_ACCESS_KEY": WORKER_SECRET,
        "AWS_SESSION_TOKEN": WORKER_SECRET,
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_CONFIG_FILE": str(credentials),
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",
    }
    for name, value in worker_env.items():
        monkeypatch.setenv(name, value)
    project = data_dir / "work" / f"ff-{uuid.uuid4().hex[:8]}" / "project"
    project.mkdir(parents=True)
    command = f"python -c {shlex.quote(AWS_PROBE)} {credentials}"

    inside = run_check(command, project, sandbox=sandbox, trusted=True)
    assert inside.ok, inside.output
    assert json.loads(inside.output.splitlines()[-1]) == {"env": [], "credentials": None, "file": None}
    assert WORKER_SECRET not in inside.output
    outside = run_check(command, project, sandbox=UNSANDBOXED, trusted=True)
    report = json.loads(outside.output.splitlines()[-1])
    # (What boto3 finds unsandboxed depends on the machine: an instance role answers there.)
    assert report["env"] == [] and WORKER_SECRET in report["file"]
