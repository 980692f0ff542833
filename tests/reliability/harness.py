"""Real processes for the reliability tests.

A `Stack` starts the Temporal dev server, workers and API servers as subprocesses, each in
its own process group, configured only through ``FORGEFLOW_*`` environment variables, on
free 127.0.0.1 ports; `Stack.close()` kills every group it started. The runs use a
generated fan-out template (one small file per module, about 50 ms to render) with one
task at a time, so a run lasts a few seconds and a kill lands while tasks run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml
from cryptography.fernet import Fernet
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

from forgeflow.devserver import dev_server_command
from forgeflow.ports import free_ports
from forgeflow.settings import load_dev_server_config
from store.db import Database
from store.keys import CreatedKey, create_key
from workflows import workflow_id_for

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_ID = "fanout"
MODULES = 40
NAMESPACE = "forgeflow-reliability"

T = TypeVar("T")


def module_slug(n: int) -> str:
    return f"m{n:04d}"


def write_fanout_template(base: Path, modules: int = MODULES) -> Path:
    """A cookiecutter template with a forgeflow.yaml of ``modules`` modules, one small
    file each; every module depends on the first (as in bench/fanout_template.py)."""
    root = base / TEMPLATE_ID
    project = root / "{{cookiecutter.project_slug}}"
    project.mkdir(parents=True, exist_ok=True)
    variables = {
        "project_name": "Fanout",
        "project_slug": "{{ cookiecutter.project_name.lower().replace(' ', '_') }}",
        "project_description": "",
        "author_email": "",
    }
    (root / "cookiecutter.json").write_text(json.dumps(variables, indent=2))
    declared = []
    for n in range(modules):
        slug = module_slug(n)
        # About 50 ms of rendering a module (a loop that writes nothing): tasks take long
        # enough for a kill to land while they run, as they would in a real template. Two
        # loops: the sandbox an untrusted template renders in refuses a range over 100,000.
        busy = "{% for i in range(1000) %}{% for j in range(1000) %}{% if j < 0 %}x{% endif %}{% endfor %}{% endfor %}"
        (project / f"{slug}.txt").write_text(f"module {n} of {{{{ cookiecutter.project_name }}}}\n{busy}")
        declared.append(
            {
                "slug": slug,
                "description": f"module {n}",
                "paths": [f"{slug}.txt"],
                "depends_on": [] if n == 0 else [module_slug(0)],
                "expected_outputs": [f"{slug}.txt"],
            }
        )
    manifest = {"forgeflow": 1, "version": "1.0.0", "title": f"Fan-out ({modules} modules)", "modules": declared}
    (root / "forgeflow.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return root


def make_api_key(database_url: str) -> CreatedKey:
    db = Database(database_url)
    try:
        db.migrate()  # before any process starts: two processes never migrate at once
        with db.session() as session:
            return create_key(
                session,
                owner_name=f"owner-{uuid.uuid4().hex[:8]}",
                email="owner@example.test",
                project_quota=100,
            )
    finally:
        db.dispose()


class Service:
    """One subprocess in its own process group, its output in a log file."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 20) -> None:
        """Signal the whole process group and wait for the leader; SIGKILL if it lingers."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        # Whatever the leader left behind in its group goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Stack:
    """The Temporal dev server, workers and API servers of one test, as real processes."""

    def __init__(
        self,
        base: Path,
        database_url: str,
        *,
        modules: int = MODULES,
        persistent_temporal: bool = False,
        **settings: str,
    ) -> None:
        self.base = base
        self.database_url = database_url
        (base / "logs").mkdir(parents=True, exist_ok=True)
        write_fanout_template(base / "templates", modules)
        self.modules = modules
        self.temporal_port, self.api_port = free_ports(2)
        self.temporal_db = base / "temporal.db" if persistent_temporal else None
        self.services: list[Service] = []
        self.temporal: Service | None = None
        self.worker: Service | None = None
        self.api: Service | None = None
        self._client: Client | None = None
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORGEFLOW_")}
        env.update(
            {
                "FORGEFLOW_DATA_DIR": str(base / "data"),
                "FORGEFLOW_DATABASE_URL": database_url,
                "FORGEFLOW_TEMPORAL_ADDRESS": self.temporal_address,
                "FORGEFLOW_NAMESPACE": NAMESPACE,
                "FORGEFLOW_TASK_QUEUE": f"reliability-{uuid.uuid4().hex[:8]}",
                "FORGEFLOW_TEMPLATE_PATH": str(base / "templates"),
                # Tasks here take milliseconds: write each start at once, so a test can see one run.
                "FORGEFLOW_TASK_START_RECORD_SECONDS": "0",
                "FORGEFLOW_MAX_PARALLEL_TASKS": "1",
                "FORGEFLOW_TASK_HEARTBEAT_TIMEOUT": "PT2S",
                "FORGEFLOW_UPDATE_TIMEOUT": "PT2S",
                "FORGEFLOW_RATE_LIMIT_PER_MINUTE": "0",
                "FORGEFLOW_SECRET_KEY": Fernet.generate_key().decode(),
                "FORGEFLOW_LOG_LEVEL": "INFO",
                "FORGEFLOW_WORKER_METRICS_ADDRESS": "",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update({f"FORGEFLOW_{k.upper()}": v for k, v in settings.items()})
        self.env = env

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _start(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> Service:
        count = sum(1 for s in self.services if s.name == name)
        service = Service(name, cmd, {**self.env, **(env or {})}, self.base / "logs" / f"{name}-{count + 1}.log")
        self.services.append(service)
        return service

    # --- Temporal --------------------------------------------------------------------

    async def start_temporal(self) -> Service:
        config = load_dev_server_config()
        config = config.model_copy(update={"db_filename": str(self.temporal_db) if self.temporal_db else None})
        cmd = dev_server_command(
            config, data_dir=self.base, namespace=NAMESPACE, port=self.temporal_port, headless=True
        )
        self.temporal = self._start("temporal", cmd)
        await self.wait_temporal()
        return self.temporal

    async def wait_temporal(self, timeout: float = 60) -> None:
        async def ready() -> bool:
            assert self.temporal is not None and self.temporal.alive, self.temporal and self.temporal.tail()
            try:
                client = await Client.connect(self.temporal_address, namespace=NAMESPACE)
                await client.count_workflows()
                return True
            except Exception:
                return False

        await eventually(ready, timeout, "the Temporal dev server to serve", interval=0.1)

    async def client(self) -> Client:
        if self._client is None:
            self._client = await Client.connect(
                self.temporal_address, namespace=NAMESPACE, data_converter=pydantic_data_converter
            )
        return self._client

    async def workflow(self, project_id: int) -> WorkflowHandle[Any, Any]:
        return (await self.client()).get_workflow_handle(workflow_id_for(project_id))

    # --- forgeflow processes ---------------------------------------------------------

    def start_worker(self, **env: str) -> Service:
        """A worker; ``env`` overrides this process's variables (another host's data dir)."""
        self.worker = self._start("worker", [sys.executable, "-m", "forgeflow", "worker"], env)
        return self.worker

    async def start_api(self, port: int | None = None, **env: str) -> Service:
        """An API server on ``port`` (the stack's own by default), with ``env`` overrides."""
        port = port or self.api_port
        self.api = self._start("api", [sys.executable, "-m", "forgeflow", "api", "--port", str(port)], env)
        await self.wait_api(port=port)
        return self.api

    async def wait_api(self, timeout: float = 60, *, port: int | None = None) -> None:
        url = f"http://127.0.0.1:{port or self.api_port}"
        api = self.api
        async with httpx.AsyncClient(timeout=2) as http:

            async def ready() -> bool:
                assert api is not None and api.alive, api and api.tail()
                try:
                    return (await http.get(f"{url}/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, timeout, "the API to listen", interval=0.1)

    def close(self) -> None:
        for service in reversed(self.services):
            service.kill()
        for service in self.services:
            print(f"----- {service.log.name} (exit {service.proc.returncode}) -----\n{service.tail()}")


# --- polling ---------------------------------------------------------------------------


async def eventually(probe: Callable[[], Awaitable[T]], timeout: float, what: str, *, interval: float = 0.2) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


# --- the API, as a client sees it ------------------------------------------------------


class Api:
    """The HTTP calls the tests make, on one API key; transport errors (the API being
    restarted) count as "not yet" while polling."""

    def __init__(self, stack: Stack, key: str, *, url: str | None = None) -> None:
        self.stack = stack
        base = url or stack.api_url
        self.http = httpx.AsyncClient(base_url=f"{base}/api/v1", headers={"X-API-Key": key}, timeout=30)

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def create(self, **body: Any) -> dict[str, Any]:
        body = {"project_name": "Fanout", "template": TEMPLATE_ID, **body}
        response = await self.http.post("/projects", json=body)
        assert response.status_code == 201, response.text
        return response.json()["project"]

    async def project(self, project_id: int) -> dict[str, Any]:
        response = await self.http.get(f"/projects/{project_id}")
        assert response.status_code == 200, response.text
        return response.json()

    async def wait_status(self, project_id: int, status: str, timeout: float = 90) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        async def probe() -> dict[str, Any] | None:
            try:
                response = await self.http.get(f"/projects/{project_id}")
            except httpx.TransportError:
                return None
            if response.status_code != 200:
                return None
            seen.update(response.json())
            assert seen["status"] != "failed" or status == "failed", seen
            return seen if seen["status"] == status else None

        try:
            return await eventually(probe, timeout, f"project {project_id} to be {status}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last seen: {seen}") from None

    async def events(self, project_id: int, **filters: Any) -> list[dict[str, Any]]:
        """The whole event log, page by page."""
        events: list[dict[str, Any]] = []
        while True:
            after = events[-1]["id"] if events else 0
            response = await self.http.get(
                f"/projects/{project_id}/events", params={"after": after, "limit": 1000, **filters}
            )
            assert response.status_code == 200, response.text
            page = response.json()
            events += page["events"]
            if not page["has_next"]:
                return events

    async def wait_events(self, project_id: int, type: str, count: int, timeout: float = 60) -> None:
        async def probe() -> bool:
            try:
                return len(await self.events(project_id, type=type)) >= count
            except httpx.TransportError:
                return False

        await eventually(probe, timeout, f"{count} {type} events of project {project_id}", interval=0.05)

    async def tasks(self, project_id: int, run: int = 1) -> list[dict[str, Any]]:
        response = await self.http.get(f"/projects/{project_id}/runs/{run}/tasks")
        assert response.status_code == 200, response.text
        return response.json()["tasks"]

    async def artifact(self, project_id: int) -> bytes:
        response = await self.http.get(f"/projects/{project_id}/artifact")
        assert response.status_code == 200, response.text
        digest = hashlib.sha256(response.content).hexdigest()
        assert response.headers["x-content-sha256"] == digest
        return response.content


# --- what every test checks about a finished run ---------------------------------------


def assert_event_log_sound(events: list[dict[str, Any]], task_ids: list[str]) -> None:
    """Event ids are 1..N with no gap and no duplicate, and every task succeeded exactly once."""
    ids = [e["id"] for e in events]
    assert ids == list(range(1, len(ids) + 1)), f"event ids with a gap or duplicate: {ids}"
    succeeded = Counter(e["task_id"] for e in events if e["type"] == "task_succeeded")
    assert succeeded == Counter(task_ids), f"task_succeeded counts: {succeeded}"
    done = Counter(e["type"] for e in events if e["type"] in ("plan_created", "export_completed", "project_ready"))
    assert done == {"plan_created": 1, "export_completed": 1, "project_ready": 1}, done


def zip_manifest(data: bytes) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        name = next(n for n in zf.namelist() if n.endswith("/.forgeflow/manifest.json"))
        return json.loads(zf.read(name))


async def max_activity_attempt(handle: WorkflowHandle[Any, Any]) -> int:
    history = await handle.fetch_history()
    return max(
        (
            e.activity_task_started_event_attributes.attempt
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        ),
        default=0,
    )
