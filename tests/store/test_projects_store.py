"""The projection and the quota, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from store.projects import (
    Projection,
    ProjectMissing,
    QuotaExceeded,
    abandon_project,
    apply_projection,
    count_active_projects,
    create_project,
    get_project,
    list_projects,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def new_project(db, owner_id, quota=100):
    with db.session(write_lock=True) as session:
        return create_project(
            session,
            owner_id=owner_id,
            quota=quota,
            name="P",
            slug="p",
            description="",
            template="t",
            input_payload={"project_name": "P"},
        ).id


def test_projection_is_idempotent_and_never_goes_back(db, make_key):
    key = make_key()
    project_id = new_project(db, key.owner_id)
    generating = Projection(project_id=project_id, seq=1, status="generating", phase="clarify", at=T0, started_at=T0)
    ready = Projection(
        project_id=project_id,
        seq=5,
        status="ready",
        phase="done",
        at=T0 + timedelta(seconds=3),
        finished_at=T0 + timedelta(seconds=3),
        artifact_key="k.zip",
        artifact_sha256="ab" * 32,
        artifact_size=10,
    )
    with db.session() as session:
        assert apply_projection(session, projection=generating)
        assert apply_projection(session, projection=ready)
        # A retried or late write changes nothing.
        assert not apply_projection(session, projection=generating)
        assert not apply_projection(session, projection=ready)
    with db.session() as session:
        row = get_project(session, owner_id=key.owner_id, project_id=project_id)
    assert (row.status, row.phase, row.projection_seq) == ("ready", "done", 5)
    assert row.started_at == T0 and row.finished_at == T0 + timedelta(seconds=3)
    assert row.updated_at == T0 + timedelta(seconds=3)
    assert row.artifact_ready and row.artifact_size == 10


def test_projection_for_a_missing_project_raises(db):
    with pytest.raises(ProjectMissing), db.session() as session:
        apply_projection(session, projection=Projection(project_id=987654, seq=1, status="x", phase="y", at=T0))


def test_quota_is_exact_under_concurrent_creates(db, make_key):
    key = make_key(quota=5)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        try:
            new_project(db, key.owner_id, quota=5)
            result = "created"
        except QuotaExceeded:
            result = "refused"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created"] * 5 + ["refused"] * 7
    with db.session() as session:
        assert count_active_projects(session, owner_id=key.owner_id) == 5


def test_an_abandoned_project_is_neither_counted_nor_listed_and_keeps_its_id(db, make_key):
    """A create whose workflow may have started all the same (its start timed out): the row
    stays, failed and archived, so its id is never handed out again (SQLite would)."""
    key = make_key()
    kept = new_project(db, key.owner_id, quota=2)
    doubtful = new_project(db, key.owner_id, quota=2)
    with db.session(write_lock=True) as session:
        abandon_project(session, project_id=doubtful, reason="The project could not be queued.")
    with db.session() as session:
        assert count_active_projects(session, owner_id=key.owner_id) == 1
        assert get_project(session, owner_id=key.owner_id, project_id=doubtful) is None
        rows, total = list_projects(session, owner_id=key.owner_id, status=None, limit=10, offset=0)
        assert [p.id for p in rows] == [kept] and total == 1
    assert new_project(db, key.owner_id, quota=2) > doubtful
