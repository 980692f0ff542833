"""A create the workflow cannot take (issue 13, finding 9): JSON nested deeper than
MAX_NESTING is 400 invalid_payload before anything parses it, Idempotency-Key or not; no
row is left behind, nothing counts against the quota, and no row ever breaks a list."""

from __future__ import annotations

import json
import shutil

import pytest
from sqlalchemy import func, select

from store.models import Project
from store.projects import create_project
from tests.api.test_quickstart import poll_until_done
from tests.conftest import FIXTURES
from tests.support import error_body

MAX_NESTING = 32  # api.validation.MAX_NESTING, as documented in the README


@pytest.fixture
def settings(settings, tmp_path):
    """The fixture templates plus ``dict-lib``: widget-lib with an object-valued variable,
    which takes any JSON object a client sends."""
    root = tmp_path / "templates"
    shutil.copytree(FIXTURES / "templates", root)
    shutil.copytree(FIXTURES / "templates" / "widget-lib", root / "dict-lib")
    variables = json.loads((root / "dict-lib" / "cookiecutter.json").read_text())
    (root / "dict-lib" / "cookiecutter.json").write_text(json.dumps({**variables, "extra": {"a": 1}}))
    return settings.model_copy(update={"template_path": str(root)})


def nested(levels: int) -> dict:
    """An object ``levels`` deep."""
    value: dict = {"leaf": "x"}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


def create_body(extra_levels: int) -> dict:
    # The body is level 1, answers 2, extra 3...
    return {"project_name": "Deep", "template": "dict-lib", "answers": {"extra": nested(extra_levels)}}


def rows_of(db, owner_id: int) -> int:
    with db.session() as session:
        return session.scalar(select(func.count(Project.id)).where(Project.owner_id == owner_id)) or 0


@pytest.mark.parametrize("levels", [MAX_NESTING - 1, 300, 900])
async def test_too_deep_a_create_is_400_and_leaves_nothing(http, make_key, db, levels):
    key = make_key(quota=1)
    auth = {"X-API-Key": key.key}
    for extra in ({}, {"Idempotency-Key": f"deep-{levels}"}):
        # Before: 500, a queued row without a workflow, counted; with the key, a RecursionError.
        response = await http.post("/projects", json=create_body(levels), headers=auth | extra)
        assert response.status_code == 400, response.text
        assert error_body(response)["error"] == {
            "code": "invalid_payload",
            "category": "validation",
            "message": f"Request body nests objects and arrays deeper than {MAX_NESTING} levels.",
            "retryable": False,
            "details": {"field": "body", "max_nesting": MAX_NESTING},
        }
    assert rows_of(db, key.owner_id) == 0
    listing = await http.get("/projects", headers=auth)
    assert listing.status_code == 200 and listing.json()["total"] == 0
    # The quota of one is still free.
    assert (await http.post("/projects", json={"project_name": "Fits"}, headers=auth)).status_code == 201


async def test_nesting_up_to_the_bound_generates(http, worker, make_key):
    auth = {"X-API-Key": make_key().key}
    body = create_body(MAX_NESTING - 2)
    assert json.dumps(body).count("{") == MAX_NESTING
    created = await http.post("/projects", json=body, headers=auth | {"Idempotency-Key": "at-the-bound"})
    assert created.status_code == 201, created.text
    project = created.json()["project"]
    assert project["input_payload"]["answers"]["extra"] == body["answers"]["extra"]
    assert (await poll_until_done(http, project["id"], auth))["status"] == "ready"
    assert (await http.get("/projects", headers=auth)).json()["total"] == 1


@pytest.mark.parametrize(
    "raw",
    [b"[" * 50_000, b'{"a":' * 20_000 + b"1" + b"}" * 20_000, b'{"notes": ' + b"[" * 40 + b"]" * 40 + b"}"],
)
async def test_pathological_nesting_is_400_on_every_route(http, make_key, raw):
    auth = {"X-API-Key": make_key().key, "Content-Type": "application/json"}
    project_id = (await http.post("/projects", json={"project_name": "Target"}, headers=auth)).json()["project"]["id"]
    for method, path in [
        ("POST", "/projects"),
        ("PATCH", f"/projects/{project_id}"),
        ("POST", f"/projects/{project_id}/approve"),
        ("POST", f"/projects/{project_id}/answers"),
        ("POST", "/webhook-secret"),
    ]:
        for extra in ({}, {"Idempotency-Key": "deep"}):
            response = await http.request(method, path, content=raw, headers=auth | extra)
            assert response.status_code == 400, (method, path, extra, response.text)
            assert response.json()["error"]["code"] == "invalid_payload"


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
async def test_numbers_json_cannot_hold_are_400(http, make_key, db, number):
    """Python's parser takes them; PostgreSQL's JSON and other readers do not."""
    key = make_key()
    raw = '{"project_name": "Odd", "template": "dict-lib", "answers": {"extra": {"n": ' + number + "}}}"
    response = await http.post(
        "/projects", content=raw, headers={"X-API-Key": key.key, "Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["details"]["field"] == "answers.extra"
    assert rows_of(db, key.owner_id) == 0


async def test_a_row_stored_too_deep_does_not_break_the_list(http, make_key, db):
    """A row stored before nesting was bounded (as finding 9 left them): its owner's list,
    the project and its status still answer, with the too-deep part left out."""
    key = make_key()
    auth = {"X-API-Key": key.key}
    assert (await http.post("/projects", json={"project_name": "Fine"}, headers=auth)).status_code == 201
    with db.session(write_lock=True) as session:
        deep = create_project(
            session,
            owner_id=key.owner_id,
            quota=100,
            name="Old",
            slug="old",
            description="",
            template="dict-lib",
            input_payload={"project_name": "Old", "answers": {"extra": nested(600)}},
        ).id
    listing = await http.get("/projects", headers=auth)
    assert listing.status_code == 200, listing.text
    old = next(p for p in listing.json()["projects"] if p["id"] == deep)
    assert old["input_payload"] == {"project_name": "Old", "answers": "(nested too deeply to show)"}
    assert (await http.get(f"/projects/{deep}", headers=auth)).status_code == 200
    assert (await http.get(f"/projects/{deep}/status", headers=auth)).status_code == 200
