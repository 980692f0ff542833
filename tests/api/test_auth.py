"""Authentication formats, lookup order, scopes, revoked and expired keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from store.keys import revoke_key
from store.models import ApiKey
from tests.support import error_body

AUTH_REQUIRED = {
    "error": {
        "code": "auth_required",
        "category": "auth",
        "message": "Authentication required.",
        "retryable": False,
        "details": {},
    }
}


async def test_missing_key_is_401_with_the_seed_body(http):
    response = await http.get("/projects")
    assert response.status_code == 401
    assert error_body(response) == AUTH_REQUIRED


async def test_unknown_key_is_401(http):
    response = await http.get("/projects", headers={"X-API-Key": "ff_not-a-real-key"})
    assert response.status_code == 401
    assert error_body(response) == AUTH_REQUIRED


@pytest.mark.parametrize("scheme", ["Bearer", "Api-Key", "apikey", "token", "bearer"])
async def test_authorization_schemes(http, make_key, scheme):
    key = make_key()
    response = await http.get("/projects", headers={"Authorization": f"{scheme} {key.key}"})
    assert response.status_code == 200, response.text


async def test_unknown_authorization_scheme_is_401(http, make_key):
    key = make_key()
    response = await http.get("/projects", headers={"Authorization": f"Basic {key.key}"})
    assert response.status_code == 401


async def test_query_fallback(http, make_key):
    key = make_key()
    response = await http.get("/projects", params={"api_key": key.key})
    assert response.status_code == 200


async def test_x_api_key_is_looked_up_first(http, make_key):
    good, other = make_key(), make_key()
    # A valid X-API-Key wins over a bad Authorization header and a bad query key...
    response = await http.get(
        "/projects",
        params={"api_key": "bad"},
        headers={"X-API-Key": good.key, "Authorization": "Bearer bad"},
    )
    assert response.status_code == 200
    # ...and a bad X-API-Key is not rescued by a valid Authorization header.
    response = await http.get("/projects", headers={"X-API-Key": "bad", "Authorization": f"Bearer {other.key}"})
    assert response.status_code == 401
    # Authorization comes before the query string.
    response = await http.get("/projects", params={"api_key": good.key}, headers={"Authorization": "Bearer bad"})
    assert response.status_code == 401


async def test_scoped_key_without_create_scope_is_403(http, make_key):
    key = make_key(scopes=["projects:read"])
    response = await http.post("/projects", json={"project_name": "X"}, headers={"X-API-Key": key.key})
    assert response.status_code == 403
    assert error_body(response) == {
        "error": {
            "code": "insufficient_scope",
            "category": "auth",
            "message": "API key is missing required scope: projects:create",
            "retryable": False,
            "details": {"required_scope": "projects:create"},
        }
    }
    assert (await http.get("/projects", headers={"X-API-Key": key.key})).status_code == 200


@pytest.mark.parametrize("path", ["/projects", "/projects/1", "/projects/1/status", "/projects/1/artifact"])
async def test_scoped_key_without_read_scope_is_403(http, make_key, path):
    key = make_key(scopes=["projects:create"])
    response = await http.get(path, headers={"X-API-Key": key.key})
    assert response.status_code == 403
    assert error_body(response)["error"]["details"] == {"required_scope": "projects:read"}
    assert response.json()["error"]["message"] == "API key is missing required scope: projects:read"


async def test_revoked_and_expired_keys_are_401(http, make_key, db):
    revoked, expired = make_key(), make_key()
    with db.session() as session:
        assert revoke_key(session, key_id=revoked.key_id)
        session.execute(
            update(ApiKey)
            .where(ApiKey.id == expired.key_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    for key in (revoked, expired):
        response = await http.get("/projects", headers={"X-API-Key": key.key})
        assert response.status_code == 401
        assert error_body(response) == AUTH_REQUIRED


@pytest.mark.parametrize("body", [b"{not json", b'{"project_name": 5}', b'{"project_name": "x", "nope": 1}'])
async def test_the_key_and_its_scope_are_checked_before_the_body(http, make_key, body):
    # A request learns nothing about its body from a route it may not use. (Two transport
    # limits come first, for every route alike: 413 for a body over the size limit and 400
    # for one nested deeper than any route takes; they protect the process, not a route.)
    headers = {"Content-Type": "application/json"}
    for path in ("/projects", "/projects/1/approve", "/projects/1/answers"):
        anonymous = await http.post(path, content=body, headers=headers)
        assert anonymous.status_code == 401, (path, anonymous.text)
        assert anonymous.json()["error"]["code"] == "auth_required"
        reader = await http.post(
            path, content=body, headers=headers | {"X-API-Key": make_key(scopes=["projects:read"]).key}
        )
        assert reader.status_code == 403, (path, reader.text)
        assert reader.json()["error"]["code"] == "insufficient_scope"
    # With the scope, the body is what is wrong.
    creator = await http.post("/projects", content=body, headers=headers | {"X-API-Key": make_key().key})
    assert creator.status_code in (400, 413), creator.text
