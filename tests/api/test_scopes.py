"""Legacy keys (issue 13, finding 5): every project scope for their own projects, never
``admin``; ``admin`` only when a key is given it explicitly."""

from __future__ import annotations

import pytest

from tests.support import error_body

PROJECT_SCOPES = ("projects:approve", "projects:cancel", "projects:create", "projects:read")


async def test_a_legacy_key_cannot_read_the_admin_stats(http, make_key):
    """The Djass contract gives a legacy key projects:create + projects:read; before, it held
    every scope, and any tenant read the counts of every owner."""
    legacy = make_key()
    refused = await http.get("/admin/stats", headers={"X-API-Key": legacy.key})
    assert refused.status_code == 403, refused.text
    assert error_body(refused) == {
        "error": {
            "code": "insufficient_scope",
            "category": "auth",
            "message": "API key is missing required scope: admin",
            "retryable": False,
            "details": {"required_scope": "admin"},
        }
    }
    # A key of every project scope, given explicitly, is no admin either; one given admin is.
    every_project_scope = make_key(legacy.owner, scopes=list(PROJECT_SCOPES))
    assert (await http.get("/admin/stats", headers={"X-API-Key": every_project_scope.key})).status_code == 403
    admin = make_key(legacy.owner, scopes=["admin"])
    assert (await http.get("/admin/stats", headers={"X-API-Key": admin.key})).status_code == 200


async def test_a_legacy_key_holds_every_project_scope_for_its_own_projects(http, worker, make_key):
    mine, theirs = make_key(), make_key()
    me, stranger = {"X-API-Key": mine.key}, {"X-API-Key": theirs.key}
    created = await http.post("/projects", json={"project_name": "Legacy Scopes"}, headers=me)
    assert created.status_code == 201, created.text
    project_id = created.json()["project"]["id"]
    # The project runs meanwhile: an action that does not fit its state is a 409, which
    # is a scope granted all the same (403 is the one answer that would say otherwise).
    calls = [
        ("GET", f"/projects/{project_id}", None, {200}),  # projects:read
        ("GET", f"/projects/{project_id}/status", None, {200}),
        ("GET", f"/projects/{project_id}/events", None, {200}),
        ("PATCH", f"/projects/{project_id}", {"name": "Renamed"}, {200}),  # projects:create
        ("POST", f"/projects/{project_id}/approve", {}, {409}),  # projects:approve: no approval gate
        ("POST", f"/projects/{project_id}/pause", None, {200, 409}),  # projects:cancel
    ]
    for method, path, body, expected in calls:
        response = await http.request(method, path, json=body, headers=me)
        assert response.status_code in expected, (method, path, response.text)
        # Another owner's legacy key sees nothing of it.
        foreign = await http.request(method, path, json=body, headers=stranger)
        assert foreign.status_code == 404, (method, path, foreign.text)
        assert foreign.json()["error"]["code"] == "project_not_found"
    assert (await http.delete(f"/projects/{project_id}", headers=stranger)).status_code == 404
    deleted = await http.delete(f"/projects/{project_id}", headers=me)  # projects:cancel
    assert deleted.status_code == 200, deleted.text
    assert (await http.get("/projects", headers=me)).json()["total"] == 0


@pytest.mark.parametrize("scope", PROJECT_SCOPES)
async def test_one_project_scope_grants_nothing_else(http, make_key, scope):
    key = make_key(scopes=[scope])
    stats = await http.get("/admin/stats", headers={"X-API-Key": key.key})
    assert stats.status_code == 403 and stats.json()["error"]["details"]["required_scope"] == "admin"
    listing = await http.get("/projects", headers={"X-API-Key": key.key})
    assert listing.status_code == (200 if scope == "projects:read" else 403)
