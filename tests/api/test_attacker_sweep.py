"""Every route of the OpenAPI document, as an attacker would call it (issue 13): each string
of each body with a NUL, huge, nested, of the wrong type; each query parameter with a NUL or
huge; bodies nested too deep; another owner's key and keys without the scope. Never a 500;
every error in the documented shape; a control character in a body never accepted."""

from __future__ import annotations

import httpx
import pytest

from tests.api.test_quickstart import poll_until_done

NUL = "bad\x00value"
# Body values to put in each string field of a request body.
VALUES = [NUL, "\x1b[2J", "x" * 100_000, {"nested": [{"deeper": NUL}]}, ["a", NUL], 12, -1.5, True, None]
SKIPPED = {"/api/v1/projects/{project_id}/events/stream"}  # a stream: held open while the project runs


def contract(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.request.method, response.request.url, response.text)
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"code", "category", "message", "retryable", "details"}, error
        assert error["category"] in ("validation", "auth", "quota", "retryable", "internal")


def string_fields(spec: dict, schema: dict | None) -> list[str]:
    """The string properties of a request body's schema (following $ref and anyOf)."""
    if not schema:
        return []
    for option in schema.get("anyOf", [schema]):
        ref = option.get("$ref")
        if ref:
            model = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
            found = []
            for name, prop in model.get("properties", {}).items():
                types = {prop.get("type")} | {o.get("type") for o in prop.get("anyOf", [])}
                if "string" in types:
                    found.append(name)
            return found
    return []


@pytest.fixture
async def target(http, worker, make_key):
    owner = make_key()
    auth = {"X-API-Key": owner.key}
    created = await http.post("/projects", json={"project_name": "Target", "template": "widget-lib"}, headers=auth)
    project_id = created.json()["project"]["id"]
    assert (await poll_until_done(http, project_id, auth))["status"] == "ready"
    return owner, project_id


async def hostile_calls(client: httpx.AsyncClient, spec: dict, method: str, url: str, operation: dict, auth: dict):
    """The owner's own route, with every body string and query parameter made hostile."""
    body_schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    base = {"project_name": "Sweep"} if url == "/api/v1/projects" and method == "post" else {}
    for name in string_fields(spec, body_schema.get("schema")):
        for value in VALUES:
            response = await client.request(method, url, json={**base, name: value}, headers=auth)
            contract(response)
            if isinstance(value, str) and any(c < " " for c in value):
                assert response.status_code == 400, (method, url, name, response.text)
    if body_schema:
        for raw in (b"[" * 100, b'{"a":' * 100 + b"1" + b"}" * 100, b"\xff\xfe", b"NaN"):
            contract(await client.request(method, url, content=raw, headers=auth))
    for param in operation.get("parameters", []):
        if param["in"] != "query":
            continue
        for value in (NUL, "x" * 10_000, "-1", "9" * 40):
            response = await client.request(method, url, params={param["name"]: value}, headers=auth)
            contract(response)
            if value == NUL:
                assert response.status_code == 422, (method, url, param["name"], response.text)


async def test_no_route_answers_500_to_anything_a_client_sends(api, target, make_key):
    owner, project_id = target
    others = [make_key().key, make_key(owner.owner, scopes=[]).key, make_key(owner.owner, scopes=["projects:read"]).key]
    fill = {
        "project_id": str(project_id),
        "run_id": "1",
        "version": "1",
        "other": "1",
        "task_id": "src",
        "file_path": "README.md",
    }
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
        spec = (await client.get("/openapi.json")).json()
        calls = [
            (method, path, operation)
            for path, operations in spec["paths"].items()
            if path.startswith("/api/v1") and path not in SKIPPED
            for method, operation in operations.items()
        ]
        calls.sort(key=lambda call: call[0] == "delete")  # the project must outlive the sweep
        assert len(calls) >= 25
        for method, path, operation in calls:
            url = path.format(**{**fill, "template_id": "widget-lib"})
            # Another owner's key, a key without scopes, a read-only key: refused, in shape.
            for key in others:
                contract(await client.request(method, url, json=None, headers={"X-API-Key": key}))
            await hostile_calls(client, spec, method, url, operation, {"X-API-Key": owner.key})
            if "{project_id}" in path:  # ids that are not there, or not numbers at all
                for odd in ("0", "2147483648", "99999999999999999999", "-1", "abc", "%00"):
                    odd_url = path.format(**{**fill, "project_id": odd, "template_id": "widget-lib"})
                    contract(await client.request(method, odd_url, headers={"X-API-Key": owner.key}))
