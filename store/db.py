"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from pydantic_core import PydanticSerializationError, to_json
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Execution option that asks SQLite for a write lock up front (BEGIN IMMEDIATE):
# a read-then-write transaction, such as the quota check on create, must not see a
# snapshot another writer is about to invalidate. PostgreSQL uses row locks instead.
WRITE_LOCK = {"forgeflow_write_lock": True}


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("forgeflow_write_lock")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def stored_json(value: Any) -> str:
    """How every JSON column is written: as the API shows JSON (pydantic's serialiser, the
    response models': compact, non-ASCII as UTF-8), so that a read may hand a stored document
    to a response as it is (api.read_json). NaN and the infinities are written as Python's
    json module writes them, so that what is read back is what was stored."""
    try:
        return to_json(value, inf_nan_mode="constants").decode()
    except PydanticSerializationError:
        # Deeper than pydantic's serialiser goes (254 levels): only documents stored before
        # nesting was bounded (api.validation.MAX_NESTING), which a read parses anyway.
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def make_engine(url: str, **kwargs: Any) -> Engine:
    kwargs.setdefault("json_serializer", stored_json)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


class Database:
    """One engine and session factory per process."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time, and a writer that finds the lock taken sleeps in
        # steps of 1, 2, 5, 10, 15... ms however soon it is free again. Threads of one process
        # queue here instead and take the lock the moment it is released; other processes
        # still meet SQLite's own lock. (Re-entrant: a nested write behaves as it did before.)
        self._sqlite_writer = threading.RLock() if self.is_sqlite else None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self, *, write_lock: bool = False) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        queue = self._sqlite_writer if write_lock and self._sqlite_writer is not None else nullcontext()
        with queue, self.sessions() as session:
            if write_lock:
                session.connection(execution_options=WRITE_LOCK)
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def migrate(self) -> None:
        upgrade_database(self.url)

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Percent signs in URLs (encoded passwords, options) would be read as interpolation.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_database(url: str) -> None:
    make_engine(url).dispose()  # creates the SQLite file's directory
    command.upgrade(alembic_config(url), "head")
