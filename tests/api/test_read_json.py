"""The status and list bodies built from rows (api.read_json, store.reads) are byte for byte
what FastAPI makes of the response models (api.schemas) for the same projects, on both
databases: v1 projects, opted-in ones, a paused one, one nested too deeply, text that needs
escaping, timestamps with and without microseconds, filters and status counts. And the
plain pages answered before routing are exactly those whose parameters the route reads the
same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import pytest
from pydantic import TypeAdapter
from sqlalchemy import update

from api.read_json import list_json, status_json
from api.reads import DEFAULT_PAGE, MAX_PAGE
from api.schemas import ProjectFilters, ProjectList, ProjectPublic, ProjectStatusName, ProjectStatusPublic
from api.status_middleware import plain_page
from store.models import Project
from store.projects import Projection, apply_projection, create_project, get_project
from store.reads import project_page, project_status, read_engine, status_counts

DEEP: dict[str, Any] = {"a": {}}
_level = DEEP["a"]
for _ in range(40):
    _level["a"] = {}
    _level = _level["a"]

# (name, input_payload, status, paused): one of each shape the list can show.
PROJECTS = [
    ("Plain", {"project_name": "Plain", "use_ai": "y"}, "queued", False),
    ('Ünïcode "quoted" \\ tab\t', {"project_name": "Ü", "note": "line\nbreak \u2028 \x01", "n": 1.5}, "ready", False),
    ("Opted in", {"project_name": "Opted in", "template": "djass-saas", "require_approval": True}, "generating", True),
    ("Paused v1", {"project_name": "Paused v1", "big": 10**20, "neg": -3}, "failed", True),
    ("Deep", {"project_name": "Deep", "deep": DEEP, "flat": [1, [2, [3]]]}, "awaiting_answers", False),
]


@pytest.fixture
def rows(db, make_key):
    """The owner and their projects' ids, newest first (the list's default order)."""
    key = make_key()
    ids = []
    with db.session(write_lock=True) as session:
        for n, (name, payload, status, paused) in enumerate(PROJECTS):
            project = create_project(
                session,
                owner_id=key.owner_id,
                quota=100,
                name=name,
                slug=f"p{n}",
                description="",
                template="djass-saas",
                input_payload=payload,
            )
            if status != "queued":
                # Whole seconds for one project: the formatting must not depend on microseconds.
                at = datetime(2026, 3, 11, 12, 0, n, 0 if n == 1 else 999_999, tzinfo=UTC)
                done = at + timedelta(seconds=5) if status in ("ready", "failed") else None
                ready = Projection(
                    project_id=project.id,
                    seq=1,
                    status=status,
                    phase=status,
                    at=at,
                    started_at=at,
                    finished_at=done,
                    error_message='boom: "x"\n' if status == "failed" else None,
                    artifact_key="a.zip" if status == "ready" else None,
                    artifact_sha256="0" * 64 if status == "ready" else None,
                    artifact_size=1 if status == "ready" else None,
                )
                apply_projection(session, projection=ready)
            if paused:
                session.execute(update(Project).where(Project.id == project.id).values(paused=True))
            ids.append(project.id)
    return key.owner_id, ids[::-1]


@pytest.fixture
def conn(db):
    engine = read_engine(db, 1)
    with engine.connect() as connection:
        yield connection
    if engine is not db.engine:
        engine.dispose()


def model_json(model: type, value: Any) -> bytes:
    # What FastAPI's response_model serialisation gives (fastapi.routing.serialize_response).
    return TypeAdapter(model).dump_json(value, by_alias=True)


def test_status_bodies_equal_the_models(db, rows, conn):
    owner_id, ids = rows
    for project_id in ids:
        row = project_status(conn, owner_id=owner_id, project_id=project_id)
        assert row is not None
        with db.session() as session:
            project = get_project(session, owner_id=owner_id, project_id=project_id)
            expected = model_json(ProjectStatusPublic, ProjectStatusPublic.of(project))
        assert status_json(row) == expected


@pytest.mark.parametrize(
    ("status", "q", "sort", "counts", "limit", "offset"),
    [
        (None, None, None, False, 20, 0),
        (None, None, None, False, 2, 1),  # a full page: the total from the statement
        (None, None, None, False, 2, 10),  # past the end: the total counted alone
        ("ready", None, None, False, 20, 0),
        (["failed", "ready"], "ü", "-name", True, 20, 0),
        (None, "%", "created_at", True, 1, 0),
    ],
)
def test_list_bodies_equal_the_models(db, rows, conn, status, q, sort, counts, limit, offset):
    owner_id, _ = rows
    page, total = project_page(conn, owner_id=owner_id, status=status, limit=limit, offset=offset, q=q, sort=sort)
    by_status = status_counts(conn, owner_id=owner_id) if counts else None
    body = list_json(page, total=total, limit=limit, offset=offset, status=status, q=q, sort=sort, counts=by_status)
    with db.session() as session:
        projects = [get_project(session, owner_id=owner_id, project_id=row[0]) for row in page]
        expected = ProjectList(
            projects=[ProjectPublic.of(project) for project in projects if project is not None],
            total=total,
            limit=limit,
            offset=offset,
            has_next=offset + len(page) < total,
            filters=ProjectFilters(status=status, q=q, sort=sort),
            # Every status, zero for those with no project, in the model's order.
            status_counts={name: 0 for name in get_args(ProjectStatusName)} | by_status if by_status else None,
        )
    assert body == model_json(ProjectList, expected)
    if offset == 0 and status is None and q is None:
        assert total == len(PROJECTS)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"", (DEFAULT_PAGE, 0)),
        (b"limit=5", (5, 0)),
        (b"offset=40&limit=007", (7, 40)),
        (f"limit={MAX_PAGE}&offset=2147483647".encode(), (MAX_PAGE, 2147483647)),
        # Everything else is the route's to check and answer.
        (b"limit=0", None),
        (f"limit={MAX_PAGE + 1}".encode(), None),
        (b"offset=2147483648", None),
        (b"limit=-1", None),
        (b"limit=+1", None),
        (b"limit=%31", None),
        (b"limit=", None),
        (b"limit=1&limit=2", None),
        (b"limit=1&", None),
        (b"limit=1&status=ready", None),
        (b"api_key=x", None),
        (b"limit=\xd9\xa1", None),  # another script's digit
        (b"limit=12345678901", None),
    ],
)
def test_plain_pages_are_those_the_route_reads_alike(query, expected):
    assert plain_page(query) == expected
