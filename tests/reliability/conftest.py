"""Fixtures of the reliability tests: a stack of real processes per test, always torn
down, and a PostgreSQL schema of its own for the tests that only make sense there."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa

from tests.reliability.harness import Stack
from tests.support import POSTGRES_URL, postgres_available


@pytest_asyncio.fixture
async def make_stack(tmp_path: Path) -> AsyncIterator[Callable[..., Stack]]:
    """``make_stack(database_url, **settings)``: a Stack under this test's tmp dir; every
    process it started is killed at teardown, whatever happened."""
    stacks: list[Stack] = []

    def make(database_url: str, **options: Any) -> Stack:
        stack = Stack(tmp_path / f"stack{len(stacks) + 1}", database_url, **options)
        stacks.append(stack)
        return stack

    try:
        yield make
    finally:
        for stack in stacks:
            stack.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'forgeflow.db'}"


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A fresh schema on the test PostgreSQL server, dropped afterwards."""
    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}")
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL}")
    schema = f"ff_rel_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
