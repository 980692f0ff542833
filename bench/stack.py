"""The real stack, started and stopped by the bench: a Temporal dev server with the flags
of `forgeflow dev`, forgeflow worker and API processes, and the bare baselines' processes.

Every child runs in its own process group, logs to a file in the run's directory, binds
only to 127.0.0.1, and is stopped by ``Stack.stop_all`` (idempotent, called from a
``finally``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, GetSystemInfoRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from forgeflow.devserver import dev_server_command
from forgeflow.ports import free_port, free_ports
from forgeflow.settings import load_dev_server_config

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
NAMESPACE = "default"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def wait_for_port(port: int, proc: Proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}; see {proc.log}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{proc.name}: nothing listens on {HOST}:{port} after {timeout:.0f} s; see {proc.log}")


# --- memory ------------------------------------------------------------------------


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM (Linux >= 4.0: ``echo 5 > /proc/PID/clear_refs``)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb(pid: int) -> float:
    """The process's resident-set high-water mark, in MiB."""
    return _status_kb(pid, "VmHWM") / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process and of its children it has waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / tick, sum(values) / tick


# --- processes ---------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


@dataclass
class Stack:
    """One run's processes, database and directory."""

    run_dir: Path
    db_kind: str = "sqlite"
    src_dir: Path = REPO  # where the children import forgeflow from (a snapshot of the tree)
    procs: list[Proc] = field(default_factory=list)
    temporal_port: int = 0
    database_url: str = ""
    template_path: str = ""
    max_parallel_tasks: int = 4
    _pg_schema: str | None = None

    @property
    def temporal_address(self) -> str:
        return f"{HOST}:{self.temporal_port}"

    @property
    def data_dir(self) -> Path:
        return self.run_dir / "data"

    def start(self, name: str, cmd: list[str], env: dict[str, str] | None = None, port: int | None = None) -> Proc:
        log = self.run_dir / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            popen = subprocess.Popen(
                cmd,
                cwd=self.src_dir,
                env={**os.environ, "PYTHONPATH": str(self.src_dir), **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped as a whole
            )
        proc = Proc(name, popen, log, port)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if proc.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.popen.wait()
        # Whatever the group leader left behind (uvicorn children, for instance).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        # API and workers first, the Temporal server last, as `forgeflow dev` does.
        for proc in list(reversed(self.procs)):
            self.stop(proc, signal.SIGINT if proc.name == "temporal" else signal.SIGTERM)
        self.drop_database()

    # --- Temporal ------------------------------------------------------------------

    def start_temporal(self) -> Proc:
        """The dev server on four fresh ports. Tried up to three times: a port picked free
        can be taken before the server binds it (the server picks its internal ports at
        start too), which it reports by exiting with "address already in use"."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, 4):
            self.temporal_port, ui_port, http_port, metrics_port = free_ports(4)
            cmd = dev_server_command(
                load_dev_server_config(),
                data_dir=self.data_dir,
                namespace=NAMESPACE,
                port=self.temporal_port,
                ui_port=ui_port,
            )
            cmd += ["--http-port", str(http_port), "--metrics-port", str(metrics_port)]
            log = self.run_dir / "logs" / "temporal.log"
            logged = log.stat().st_size if log.exists() else 0
            proc = self.start("temporal", cmd, port=self.temporal_port)
            try:
                wait_for_port(self.temporal_port, proc)
                return proc
            except RuntimeError:
                said = proc.log.read_bytes()[logged:]
                if attempt == 3 or proc.popen.poll() is None or b"address already in use" not in said:
                    raise
                self.procs.remove(proc)
        raise AssertionError("not reached")

    async def client(self, data_converter: object = pydantic_data_converter) -> Client:
        deadline = time.monotonic() + 60
        while True:
            try:
                client = await Client.connect(
                    self.temporal_address,
                    namespace=NAMESPACE,
                    data_converter=data_converter,  # type: ignore[arg-type]
                )
                await client.workflow_service.get_system_info(GetSystemInfoRequest())
                return client
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    # --- database ------------------------------------------------------------------

    def setup_database(self) -> str:
        if self.db_kind == "sqlite":
            self.database_url = f"sqlite:///{self.data_dir / 'forgeflow.db'}"
        else:
            self._pg_schema = f"ff_bench_{uuid.uuid4().hex[:10]}"
            admin = sa.create_engine(POSTGRES_URL)
            with admin.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{self._pg_schema}"'))
            admin.dispose()
            self.database_url = f"{POSTGRES_URL}?options=-csearch_path%3D{self._pg_schema}"
        from store.db import upgrade_database

        upgrade_database(self.database_url)
        return self.database_url

    def drop_database(self) -> None:
        if self._pg_schema is None:
            return
        admin = sa.create_engine(POSTGRES_URL)
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{self._pg_schema}" CASCADE'))
        admin.dispose()
        self._pg_schema = None

    def create_key(self, owner: str = "bench") -> tuple[str, int]:
        from store.db import Database
        from store.keys import create_key

        db = Database(self.database_url)
        try:
            with db.session() as session:
                key = create_key(session, owner_name=owner, email=f"{owner}@example.test", project_quota=10**9)
        finally:
            db.dispose()
        return key.key, key.owner_id

    # --- forgeflow processes ---------------------------------------------------------

    def forgeflow_env(self, task_queue: str = "forgeflow") -> dict[str, str]:
        return {
            "FORGEFLOW_DATA_DIR": str(self.data_dir),
            "FORGEFLOW_DATABASE_URL": self.database_url,
            "FORGEFLOW_TEMPORAL_ADDRESS": self.temporal_address,
            "FORGEFLOW_NAMESPACE": NAMESPACE,
            "FORGEFLOW_TASK_QUEUE": task_queue,
            "FORGEFLOW_TEMPLATE_PATH": self.template_path,
            "FORGEFLOW_MAX_PARALLEL_TASKS": str(self.max_parallel_tasks),
            "FORGEFLOW_LOG_LEVEL": "WARNING",
            # Counted as in production, never refused: the load runs far exceed 600/min.
            "FORGEFLOW_RATE_LIMIT_PER_MINUTE": str(10**9),
        }

    def start_worker(self, n: int = 1) -> Proc:
        return self.start(f"worker-{n}", [sys.executable, "-m", "forgeflow", "worker"], self.forgeflow_env())

    def start_api(self, name: str = "api", **env: str) -> Proc:
        port = free_port()
        cmd = [sys.executable, "-m", "forgeflow", "api", "--host", HOST, "--port", str(port), "--workers", "1"]
        return self.start(name, cmd, self.forgeflow_env() | env, port=port)

    def start_bare_worker(self, task_queue: str, n: int = 1) -> Proc:
        cmd = [sys.executable, "-m", "bench.bare", "--address", self.temporal_address, "--task-queue", task_queue]
        return self.start(f"bare-worker-{n}", cmd)

    def start_bare_api(self, body_file: Path, name: str = "bare-api") -> Proc:
        port = free_port()
        cmd = [sys.executable, "-m", "bench.bare_api", "--host", HOST, "--port", str(port), "--body", str(body_file)]
        return self.start(name, cmd, port=port)


async def wait_for_pollers(client: Client, task_queue: str, procs: list[Proc], timeout: float = 60) -> None:
    """Until every worker process polls the task queue (its identity starts with its pid)."""
    deadline = time.monotonic() + timeout
    request = DescribeTaskQueueRequest(
        namespace=NAMESPACE,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    while True:
        for proc in procs:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}; see {proc.log}")
        response = await client.workflow_service.describe_task_queue(request)
        polling = {p.identity.split("@", 1)[0] for p in response.pollers}
        if all(str(proc.pid) in polling for proc in procs):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers {[p.name for p in procs]} do not poll {task_queue} after {timeout:.0f} s")
        await asyncio.sleep(0.1)
