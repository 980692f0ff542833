"""Create, list, read and status: the v1 contract field for field, and every failure case."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from store.models import Project
from tests.support import error_body

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
PROJECT_FIELDS = {
    "id",
    "name",
    "slug",
    "status",
    "error_message",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "artifact_ready",
    "input_payload",
}


@pytest.fixture
def key(make_key):
    return make_key(email="owner@acme.test")


@pytest.fixture
def auth(key):
    return {"X-API-Key": key.key}


async def create(http, auth, **body):
    return await http.post("/projects", json={"project_name": "Acme CRM", **body}, headers=auth)


async def test_create_returns_the_queued_project(http, auth):
    response = await create(http, auth, project_slug="Acme CRM-2", author_email="")
    assert response.status_code == 201
    project = response.json()["project"]
    assert set(project) == PROJECT_FIELDS
    assert isinstance(project["id"], int)
    assert project["name"] == "Acme CRM"
    assert project["slug"] == "acme_crm_2"
    assert project["status"] == "queued"
    assert project["error_message"] == ""
    assert ISO_UTC.match(project["created_at"]) and ISO_UTC.match(project["updated_at"])
    # The echo is the normalised request: slug normalised, empty author_email filled.
    assert project["input_payload"] == {
        "project_name": "Acme CRM",
        "project_slug": "acme_crm_2",
        "author_email": "owner@acme.test",
    }


@pytest.mark.parametrize(
    ("name", "slug", "expected"),
    [
        ("Acme CRM", None, "acme_crm"),
        ("Ünïcode Café Project", None, "unicode_cafe_project"),
        ("x", "  My--Fancy  Slug!! ", "my_fancy_slug"),
        ("x", "already_ok", "already_ok"),
    ],
)
async def test_slug_normalisation(http, auth, name, slug, expected):
    body = {"project_name": name} | ({"project_slug": slug} if slug is not None else {})
    response = await http.post("/projects", json=body, headers=auth)
    assert response.status_code == 201, response.text
    assert response.json()["project"]["slug"] == expected


@pytest.mark.parametrize("body", [{"project_slug": "!!!"}, {"project_name": "???", "project_slug": ""}])
async def test_invalid_slug_is_400_with_the_seed_body(http, auth, body):
    response = await http.post("/projects", json={"project_name": "Acme", **body}, headers=auth)
    assert response.status_code == 400
    assert error_body(response) == {
        "error": {
            "code": "invalid_project_slug",
            "category": "validation",
            "message": "project_slug must contain letters or numbers.",
            "retryable": False,
            "details": {"field": "project_slug"},
        }
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "project_name"),
        ({"project_name": ""}, "project_name"),
        ({"project_name": 42}, "project_name"),
        ({"project_name": "A", "use_stripe": "yes"}, "use_stripe"),
        ({"project_name": "A", "use_ci": 1}, "use_ci"),  # true and false are taken, as "y" and "n"
        ({"project_name": "A", "surprise": 1}, "surprise"),
        ({"project_name": "A" * 201}, "project_name"),
        ([], "body"),
    ],
)
async def test_invalid_payload_is_400_naming_the_field(http, auth, db, body, field):
    with db.session() as session:
        before = session.scalar(select(func.count(Project.id)))
    response = await http.post("/projects", json=body, headers=auth)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_payload"
    assert error["category"] == "validation"
    assert error["retryable"] is False
    assert error["details"]["field"] == field
    with db.session() as session:
        assert session.scalar(select(func.count(Project.id))) == before


async def test_malformed_json_is_400(http, auth):
    response = await http.post(
        "/projects", content=b'{"project_name": ', headers=auth | {"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_payload"
    assert response.json()["error"]["message"] == "Request body is not valid JSON."


async def test_list_is_newest_first_with_pagination(http, auth):
    ids = [(await create(http, auth, project_slug=f"p{i}")).json()["project"]["id"] for i in range(3)]
    page = (await http.get("/projects", params={"limit": 2}, headers=auth)).json()
    assert [p["id"] for p in page["projects"]] == ids[::-1][:2]
    assert (page["total"], page["limit"], page["offset"], page["has_next"]) == (3, 2, 0, True)
    assert page["filters"] == {"status": None}
    last = (await http.get("/projects", params={"limit": 2, "offset": 2}, headers=auth)).json()
    assert [p["id"] for p in last["projects"]] == [ids[0]]
    assert last["has_next"] is False
    queued = (await http.get("/projects", params={"status": "queued"}, headers=auth)).json()
    assert queued["total"] == 3 and queued["filters"] == {"status": "queued"}
    ready = (await http.get("/projects", params={"status": "ready"}, headers=auth)).json()
    assert ready["projects"] == [] and ready["total"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"status": "done"}, "status"),
    ],
)
async def test_invalid_list_params_are_422(http, auth, params, field):
    response = await http.get("/projects", params=params, headers=auth)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["category"] == "validation"
    assert error["details"]["field"] == field


async def test_limit_bounds_are_accepted(http, auth):
    for limit in (1, 100):
        assert (await http.get("/projects", params={"limit": limit}, headers=auth)).status_code == 200


async def test_read_and_status(http, auth):
    project = (await create(http, auth)).json()["project"]
    full = await http.get(f"/projects/{project['id']}", headers=auth)
    assert full.status_code == 200 and full.json() == project
    status = await http.get(f"/projects/{project['id']}/status", headers=auth)
    assert status.json() == {
        "id": project["id"],
        "status": "queued",
        "error_message": "",
        "artifact_ready": False,
        "started_at": None,
        "finished_at": None,
        "updated_at": project["updated_at"],
    }


@pytest.mark.parametrize("suffix", ["", "/status", "/artifact"])
async def test_another_owners_project_is_404(http, auth, make_key, suffix):
    project = (await create(http, auth)).json()["project"]
    stranger = {"X-API-Key": make_key().key}
    for project_id in (project["id"], 999999):
        response = await http.get(f"/projects/{project_id}{suffix}", headers=stranger)
        assert response.status_code == 404
        assert error_body(response) == {
            "error": {
                "code": "project_not_found",
                "category": "validation",
                "message": "Project not found.",
                "retryable": False,
                "details": {"project_id": project_id},
            }
        }
    listing = (await http.get("/projects", headers=stranger)).json()
    assert listing["total"] == 0


async def test_non_integer_project_id_is_a_validation_error(http, auth):
    response = await http.get("/projects/abc", headers=auth)
    assert response.status_code == 422
    assert response.json()["error"]["details"]["field"] == "project_id"


async def test_quota_is_429_with_the_seed_body(http, make_key):
    auth = {"X-API-Key": make_key(quota=2).key}
    for _ in range(2):
        assert (await create(http, auth)).status_code == 201
    response = await create(http, auth)
    assert response.status_code == 429
    assert error_body(response) == {
        "error": {
            "code": "quota_exceeded",
            "category": "quota",
            "message": "Project quota exceeded for this API identity.",
            "retryable": False,
            "details": {"quota": 2, "retry_guidance": "Delete old projects or request limit bump."},
        }
    }


async def test_artifact_before_ready_is_409(http, auth):
    project = (await create(http, auth)).json()["project"]
    response = await http.get(f"/projects/{project['id']}/artifact", headers=auth)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_state"
    assert error_body(response)["error"]["details"] == {"current_status": "queued"}


async def test_framework_errors_use_the_error_contract(http, auth):
    missing = await http.get("/nothing-here", headers=auth)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong_method = await http.delete("/projects", headers=auth)
    assert wrong_method.status_code == 405
    assert set(wrong_method.json()["error"]) == {"code", "category", "message", "retryable", "details"}
