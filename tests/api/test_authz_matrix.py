"""Every route of the OpenAPI document: no key 401, a revoked key 401, a key without the
route's scope 403 naming it, another owner's key 404 where a project is addressed."""

from __future__ import annotations

import httpx

from store.keys import revoke_key

ALL_SCOPES = ["projects:read", "projects:create", "projects:approve", "projects:cancel", "admin"]
FILL = {
    "project_id": None,
    "run_id": "1",
    "version": "1",
    "other": "1",
    "task_id": "src",
    "file_path": "README.md",
    "template_id": "djass-saas",
}


def routes(spec: dict) -> list[tuple[str, str]]:
    found = []
    for path, operations in spec["paths"].items():
        if path.startswith("/api/v1"):
            found += [(method.upper(), path) for method in operations if method in ("get", "post", "patch", "delete")]
    return found


async def call(client: httpx.AsyncClient, method: str, path: str, key: str | None) -> httpx.Response:
    headers = {"X-API-Key": key} if key else {}
    body = {} if method in ("POST", "PATCH") else None
    return await client.request(method, path, headers=headers, json=body)


async def test_authorisation_matrix(api, make_key, db):
    owner, stranger, revoked = make_key(), make_key(), make_key()
    with db.session() as session:
        revoke_key(session, key_id=revoked.key_id)
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
        spec = (await client.get("/openapi.json")).json()
        created = await client.post("/api/v1/projects", json={"project_name": "Mine"}, headers={"X-API-Key": owner.key})
        project_id = str(created.json()["project"]["id"])
        table = routes(spec)
        assert len(table) >= 25, table
        no_scope = make_key(owner.owner, scopes=[])
        for method, template in table:
            path = template.format(**{**FILL, "project_id": project_id})
            assert (await call(client, method, path, None)).status_code == 401, (method, path)
            assert (await call(client, method, path, revoked.key)).status_code == 401, (method, path)
            refused = await call(client, method, path, no_scope.key)
            assert refused.status_code == 403, (method, path, refused.text)
            scope = refused.json()["error"]["details"]["required_scope"]
            assert scope in ALL_SCOPES
            others = make_key(owner.owner, scopes=[s for s in ALL_SCOPES if s != scope])
            assert (await call(client, method, path, others.key)).status_code == 403, (method, path)
            if "{project_id}" in template:
                foreign = await call(client, method, path, stranger.key)
                assert foreign.status_code == 404, (method, path, foreign.text)
                assert foreign.json()["error"]["code"] == "project_not_found"


async def test_the_openapi_document_is_complete(api):
    async with httpx.AsyncClient(base_url=api.url) as client:
        spec = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    schemes = spec["components"]["securitySchemes"]
    assert {"ApiKeyHeader", "Bearer", "ApiKeyQuery"} <= set(schemes)
    for method, path in routes(spec):
        operation = spec["paths"][path][method.lower()]
        assert operation.get("security"), (method, path)
        codes = set(operation["responses"])
        assert {"401", "403", "500"} <= codes, (method, path, codes)
        if "{project_id}" in path:
            assert "404" in codes, (method, path)
