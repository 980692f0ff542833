"""X-Request-ID: echoed when sane, generated otherwise, on every response and in every error body."""

from __future__ import annotations

import logging
import re

import httpx
import pytest

from api.request_context import RequestIdLogFilter, choose_request_id, request_id_var
from tests.support import LiveServer, error_body

GENERATED = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def auth(make_key):
    return {"X-API-Key": make_key().key}


@pytest.mark.parametrize("sent", ["abc", "Req-1.2:3_x", "a" * 128, "0"])
async def test_a_sane_id_is_echoed(http, auth, sent):
    response = await http.get("/projects", headers=auth | {"X-Request-ID": sent})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == sent


@pytest.mark.parametrize("sent", ["", "a" * 129, "has space", "semi;colon", "slash/", "quote'"])
async def test_an_insane_id_is_replaced(http, auth, sent):
    response = await http.get("/projects", headers=auth | {"X-Request-ID": sent})
    assert response.status_code == 200
    assert GENERATED.match(response.headers["x-request-id"])


async def test_an_id_is_generated_per_request(http, auth):
    first, second = [await http.get("/projects", headers=auth) for _ in range(2)]
    assert GENERATED.match(first.headers["x-request-id"])
    assert GENERATED.match(second.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert len(first.headers.get_list("x-request-id")) == 1


async def test_created_project_and_health_carry_it(http, api, auth):
    created = await http.post("/projects", json={"project_name": "Rid"}, headers=auth | {"X-Request-ID": "c-1"})
    assert created.status_code == 201 and created.headers["x-request-id"] == "c-1"
    async with httpx.AsyncClient(base_url=api.url) as bare:
        health = await bare.get("/healthz", headers={"X-Request-ID": "h-1"})
    assert health.headers["x-request-id"] == "h-1"


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/projects", 401, "auth_required"),
        ("GET", "/projects/999999", 404, "project_not_found"),
        ("GET", "/projects?limit=0", 422, "invalid_parameters"),
        ("POST", "/projects", 400, "invalid_payload"),
        ("GET", "/no-such-route", 404, "not_found"),
        ("DELETE", "/projects", 405, "method_not_allowed"),
    ],
)
async def test_every_error_body_carries_it(http, auth, method, path, status, code):
    headers = ({} if status == 401 else auth) | {"X-Request-ID": "err-42"}
    response = await http.request(method, path, json={}, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["details"]["request_id"] == "err-42"
    error_body(response)  # details.request_id == the header


async def test_generated_id_in_the_error_body_matches_the_header(http):
    response = await http.get("/projects")
    assert response.status_code == 401
    assert GENERATED.match(response.json()["error"]["details"]["request_id"])
    error_body(response)


async def test_unexpected_errors_carry_it_too(settings):
    server = LiveServer(settings)
    app = server.server.config.app

    async def boom() -> None:
        raise RuntimeError("kaboom")

    app.add_api_route("/boom", boom)
    async with server, httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get("/boom", headers={"X-Request-ID": "boom-1"})
        generated = await http.get("/boom")
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "boom-1"
    assert response.json()["error"]["code"] == "internal_error"
    assert response.json()["error"]["details"] == {"request_id": "boom-1"}
    assert "kaboom" not in response.text
    assert generated.json()["error"]["details"]["request_id"] == generated.headers["x-request-id"]


def test_choose_and_log_filter():
    assert choose_request_id("ok-1") == "ok-1"
    assert GENERATED.match(choose_request_id(None))
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    token = request_id_var.set("log-7")
    try:
        assert RequestIdLogFilter().filter(record) and record.request_id == "log-7"
    finally:
        request_id_var.reset(token)
    RequestIdLogFilter().filter(record)
    assert record.request_id == "-"
