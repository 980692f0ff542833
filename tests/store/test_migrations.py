"""Migrations: they build exactly the models' schema, and carry existing rows forward."""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from store.db import alembic_config, make_engine, stored_json
from store.models import Base, Project
from tests.support import POSTGRES_URL, postgres_available

projects = Project.__table__


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    if not postgres_available():
        pytest.skip("PostgreSQL is not reachable")
    schema = f"ff_mig_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def test_head_matches_the_models(empty_url):
    command.upgrade(alembic_config(empty_url), "head")
    engine = make_engine(empty_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_rows_from_the_first_schema_survive_the_upgrade(empty_url):
    config = alembic_config(empty_url)
    command.upgrade(config, "0001")
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO owners (id, name, email, project_quota, created_at) "
                "VALUES (1, 'o', 'o@x', 5, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO projects (id, owner_id, name, slug, description, template, status, phase, error_message, "
                "input_payload, created_at, updated_at, artifact_ready, projection_seq) VALUES (1, 1, 'P', 'p', '', "
                "'djass-saas', 'ready', 'done', '', '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, false, 3)"
            )
        )
    command.upgrade(config, "head")
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT require_approval, current_run, spec_version, event_seq FROM projects")).one()
    engine.dispose()
    assert tuple(row) == (False, 1, 0, 0)
    command.downgrade(config, "base")


def test_stored_401_and_403_answers_are_dropped_by_the_upgrade(empty_url):
    """They answered the key that sent the request, and would be replayed to any key of the
    owner for a day (issue 13, finding 7); stored 2xx and other 4xx answers stay."""
    config = alembic_config(empty_url)
    command.upgrade(config, "0004")
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO owners (id, name, email, project_quota, created_at) "
                "VALUES (1, 'o', 'o@x', 5, CURRENT_TIMESTAMP)"
            )
        )
        for key, status in (("created", 201), ("refused", 403), ("anonymous", 401), ("invalid", 400)):
            conn.execute(
                sa.text(
                    "INSERT INTO idempotency_keys (owner_id, key, fingerprint, response_status, locked_at, "
                    "created_at, expires_at) VALUES (1, :key, 'f', :status, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, "
                    "CURRENT_TIMESTAMP)"
                ),
                {"key": key, "status": status},
            )
    command.upgrade(config, "head")
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT key, required_scopes FROM idempotency_keys ORDER BY key")).all()
    engine.dispose()
    assert [tuple(row) for row in kept] == [("created", None), ("invalid", None)]
    command.downgrade(config, "base")


def test_payloads_are_rewritten_as_the_api_shows_json(empty_url):
    """Payloads written by Python's json module (spaces, non-ASCII escaped) before 0012 read
    back as the same documents, now in the API's own form, which the list hands on as it is
    (api.read_json); a payload already in that form is left alone."""
    config = alembic_config(empty_url)
    command.upgrade(config, "0011")
    engine = make_engine(empty_url)
    legacy = {"project_name": 'Café "x"', "n": [1, 2.5, {"deep": None}], "big": 10**20, "line": "a\nb\u2028"}
    compact = {"project_name": "Already compact"}
    deep: dict = {}
    for _ in range(600):  # deeper than pydantic's serialiser goes: stored before nesting was bounded
        deep = {"a": deep}
    deep = {"project_name": "Deep", "answers": deep}
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO owners (id, name, email, project_quota, created_at) "
                "VALUES (1, 'o', 'o@x', 5, CURRENT_TIMESTAMP)"
            )
        )
        for project_id, text in ((1, json.dumps(legacy)), (2, stored_json(compact)), (3, json.dumps(deep))):
            conn.execute(
                sa.text(
                    "INSERT INTO projects (id, owner_id, name, slug, description, template, status, phase, "
                    "error_message, input_payload, created_at, updated_at, artifact_ready, projection_seq) "
                    "VALUES (:id, 1, 'P', 'p', '', 'djass-saas', 'ready', 'done', '', :payload, CURRENT_TIMESTAMP, "
                    "CURRENT_TIMESTAMP, false, 3)"
                ),
                {"id": project_id, "payload": text},
            )
    assert json.dumps(legacy) != stored_json(legacy)  # the test would prove nothing otherwise
    command.upgrade(config, "head")
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.select(projects.c.id, sa.cast(projects.c.input_payload, sa.Text))).all())
    engine.dispose()
    assert stored == {1: stored_json(legacy), 2: stored_json(compact), 3: stored_json(deep)}
    assert json.loads(stored[3]) == deep and ": " not in stored[3]
    assert json.loads(stored[1]) == legacy
    assert "Café" in stored[1] and ": " not in stored[1]
    command.downgrade(config, "base")
