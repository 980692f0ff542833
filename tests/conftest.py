"""Shared fixtures: a real Temporal dev server, real SQLite and PostgreSQL, a real
worker on its own task queue per test, and the API served over real HTTP."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from forgeflow.settings import Settings, load_dev_server_config
from forgeflow.worker import build_worker
from store.db import Database
from store.keys import CreatedKey, create_key
from store.projects import create_project
from tests.s3server import MotoServer, S3Bucket, isolate_aws_environment, new_bucket
from tests.support import POSTGRES_URL, LiveServer, postgres_available, tool_path
from workflows.types import SEARCH_ATTRIBUTES

FIXTURES = Path(__file__).parent / "fixtures"


DB_KINDS = ("sqlite", "postgresql")


def namespace_for(db_kind: str) -> str:
    # Project ids restart at 1 in each test database, and workflow ids derive from
    # them, so each database gets its own namespace, as each deployment would.
    return f"forgeflow-{db_kind}"


def dev_server_args() -> list[str]:
    """The same tuning `forgeflow dev` uses, from temporal-dev.yaml."""
    config = load_dev_server_config()
    args: list[str] = []
    for kind in DB_KINDS:
        args += ["--namespace", namespace_for(kind)]
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


@pytest.fixture(scope="session")
def namespace(database_url: str) -> str:
    return namespace_for("sqlite" if database_url.startswith("sqlite") else "postgresql")


@pytest.fixture(scope="session", params=DB_KINDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'forgeflow.db'}"
        return
    if not postgres_available():
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
def settings(tmp_path: Path, database_url: str, temporal_address: str, namespace: str, db: Database) -> Settings:
    return Settings(
        namespace=namespace,
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


@pytest_asyncio.fixture(scope="session")
async def client(temporal_env: WorkflowEnvironment, temporal_address: str, namespace: str) -> Client:
    return await Client.connect(temporal_address, namespace=namespace, data_converter=pydantic_data_converter)


@pytest_asyncio.fixture
async def worker(client: Client, settings: Settings, db: Database) -> AsyncIterator[Worker]:
    with ThreadPoolExecutor(max_workers=8) as executor:
        w = build_worker(client, settings, db=db, executor=executor)
        async with w:
            yield w


@pytest_asyncio.fixture
async def api(settings: Settings) -> AsyncIterator[LiveServer]:
    async with LiveServer(settings) as server:
        yield server


@pytest_asyncio.fixture
async def http(api: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{api.url}/api/v1", timeout=30) as session:
        yield session


@pytest.fixture
def project_row(db, make_key):
    def make(**answers):  # a project row, as the API's create leaves it: (key, project id)
        key = make_key()
        with db.session() as session:
            project = create_project(
                session,
                owner_id=key.owner_id,
                quota=100,
                name="Widget Lib",
                slug="widget_lib",
                description="",
                template="widget-lib",
                input_payload=answers,
            )
        return key, project.id

    return make


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A real S3-compatible server (moto's) in a process on 127.0.0.1, for the session."""
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> S3Bucket:
    """A bucket of the test's own, and the AWS credentials boto3 finds in the environment."""
    isolate_aws_environment(monkeypatch)
    return new_bucket(s3_server.url)
