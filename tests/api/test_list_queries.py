"""GET /projects: search, sort, several statuses, status_counts on request, and unknown or
bad parameters refused by name; a v1 client still sees exactly the v1 body. Rows are
inserted with the store (no workflow needed); every request goes over real HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from store.models import Project, utcnow
from store.projects import create_project
from tests.api.test_projects import PROJECT_FIELDS
from tests.support import error_body

V1_LIST_KEYS = {"projects", "total", "limit", "offset", "has_next", "filters"}
# name, description, status; created one minute apart in this order, updated in reverse.
ROWS = [
    ("Acme CRM", "Internal CRM for support", "ready"),
    ("beta shop", "Sells 100% cotton", "failed"),
    ("Gamma_Blog", "A blog", "queued"),
    ("delta", "Uses acme widgets", "ready"),
    ("Epsilon", "GammaXBlog lookalike", "generating"),
]


@pytest.fixture
def owner(db, make_key):
    """A key whose owner has ROWS (plus one archived project), and their ids in ROWS order."""
    key = make_key()
    start = utcnow() - timedelta(hours=1)
    ids = []
    with db.session(write_lock=True) as session:
        for n, (name, description, status) in enumerate(ROWS):
            project = create_project(
                session,
                owner_id=key.owner_id,
                quota=100,
                name=name,
                slug=f"p{n}",
                description=description,
                template="djass-saas",
                input_payload={"project_name": name},
            )
            project.status = status
            project.created_at = start + timedelta(minutes=n)
            project.updated_at = start + timedelta(minutes=30 - n)
            ids.append(project.id)
        archived = create_project(
            session,
            owner_id=key.owner_id,
            quota=100,
            name="Acme archived",
            slug="gone",
            description="",
            template="djass-saas",
            input_payload={},
        )
        session.flush()
        session.execute(update(Project).where(Project.id == archived.id).values(archived_at=utcnow(), status="ready"))
    return {"X-API-Key": key.key}, ids


async def listed(http, auth, **params):
    response = await http.get("/projects", params=params, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def names(page):
    return [p["name"] for p in page["projects"]]


async def test_search_finds_by_name_and_description_case_insensitively(http, owner):
    auth, _ = owner
    page = await listed(http, auth, q="ACME")
    # By name ("Acme CRM") and by description ("Uses acme widgets"); never the archived one.
    assert sorted(names(page)) == ["Acme CRM", "delta"]
    assert page["total"] == 2 and page["filters"] == {"status": None, "q": "ACME"}
    assert names(await listed(http, auth, q="widgets", status="ready")) == ["delta"]
    assert names(await listed(http, auth, q="no such thing")) == []


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("%", ["beta shop"]),  # only the literal "100%", not every row
        ("_", ["Gamma_Blog"]),  # not any single character
        ("a_b", ["Gamma_Blog"]),  # not "GammaXBlog"
        ("\\", []),
    ],
)
async def test_search_wildcards_are_literal(http, owner, q, expected):
    auth, _ = owner
    assert names(await listed(http, auth, q=q)) == expected


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        ("created_at", [0, 1, 2, 3, 4]),
        ("-created_at", [4, 3, 2, 1, 0]),
        ("updated_at", [4, 3, 2, 1, 0]),
        ("-updated_at", [0, 1, 2, 3, 4]),
        ("name", [0, 1, 3, 4, 2]),  # Acme, beta, delta, Epsilon, Gamma_Blog: case ignored
        ("-name", [2, 4, 3, 1, 0]),
    ],
)
async def test_each_sort_order(http, owner, sort, order):
    auth, ids = owner
    page = await listed(http, auth, sort=sort)
    assert [p["id"] for p in page["projects"]] == [ids[i] for i in order]
    assert page["filters"] == {"status": None, "sort": sort}
    # Pages of a sorted list follow on from each other.
    first, second = await listed(http, auth, sort=sort, limit=2), await listed(http, auth, sort=sort, limit=3, offset=2)
    assert [p["id"] for p in first["projects"] + second["projects"]] == [ids[i] for i in order]


async def test_default_order_is_newest_first(http, owner):
    auth, ids = owner
    assert [p["id"] for p in (await listed(http, auth))["projects"]] == ids[::-1]


async def test_several_statuses(http, owner):
    auth, ids = owner
    response = await http.get("/projects", params=[("status", "ready"), ("status", "failed")], headers=auth)
    page = response.json()
    assert [p["id"] for p in page["projects"]] == [ids[3], ids[1], ids[0]]
    assert page["total"] == 3 and page["filters"] == {"status": ["ready", "failed"]}
    # The same status twice is that one status, shown as in v1.
    twice = (await http.get("/projects", params=[("status", "queued"), ("status", "queued")], headers=auth)).json()
    assert [p["id"] for p in twice["projects"]] == [ids[2]] and twice["filters"] == {"status": "queued"}


async def test_status_counts_only_when_asked(http, owner, make_key):
    auth, _ = owner
    plain = await listed(http, auth, status="ready", limit=1)
    assert "status_counts" not in plain
    counted = await listed(http, auth, status="ready", include="status_counts", limit=1)
    # For the owner, every status, whatever the page's filters; archived projects not counted.
    assert counted["status_counts"] == {
        "queued": 1,
        "generating": 1,
        "awaiting_answers": 0,
        "awaiting_approval": 0,
        "awaiting_budget": 0,
        "ready": 2,
        "failed": 1,
        "cancelled": 0,
    }
    # The rest of the body is the same as without it.
    assert {k: v for k, v in counted.items() if k != "status_counts"} == plain
    # Another owner's counts are theirs alone.
    other = {"X-API-Key": make_key().key}
    assert set((await listed(http, other, include="status_counts"))["status_counts"].values()) == {0}


async def test_v1_body_is_unchanged(http, owner):
    auth, _ = owner
    page = await listed(http, auth, limit=2, offset=1, status="ready")
    assert set(page) == V1_LIST_KEYS
    assert page["filters"] == {"status": "ready"}
    assert all(set(p) == PROJECT_FIELDS for p in page["projects"])
    assert set(await listed(http, auth)) == V1_LIST_KEYS
    # The legacy query-string key is a parameter like any other, not an unknown one.
    assert set(await listed(http, {}, api_key=auth["X-API-Key"])) == V1_LIST_KEYS


async def test_unknown_parameters_are_422_naming_them(http, owner):
    auth, _ = owner
    response = await http.get("/projects", params={"stauts": "ready", "limit": 5, "page": 2}, headers=auth)
    assert response.status_code == 422
    error = error_body(response)["error"]
    assert error["code"] == "invalid_parameters" and error["category"] == "validation"
    assert error["details"]["field"] == "stauts"
    assert error["details"]["unknown"] == ["stauts", "page"]
    assert "stauts" in error["message"] and "page" in error["message"]
    # Authentication still comes first.
    assert (await http.get("/projects", params={"stauts": "ready"})).status_code == 401


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"q": ""}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"sort": "id"}, "sort"),
        ({"sort": "+name"}, "sort"),
        ([("status", "ready"), ("status", "done")], "status"),
        ({"include": "everything"}, "include"),
    ],
)
async def test_bad_search_sort_or_status_is_422_naming_it(http, owner, params, field):
    auth, _ = owner
    response = await http.get("/projects", params=params, headers=auth)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_parameters" and error["details"]["field"] == field
