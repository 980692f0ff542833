"""Temporal unreachable when creating: 503 retryable_error, and no project left behind."""

from __future__ import annotations

import socket

from sqlalchemy import func, select

from store.models import Project
from tests.support import LiveServer, error_body


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_create_answers_503_and_leaves_nothing(settings, make_key, db):
    import httpx

    down = settings.model_copy(update={"temporal_address": f"127.0.0.1:{closed_port()}"})
    key = make_key()
    with db.session() as session:
        before = session.scalar(select(func.count(Project.id)))
    async with LiveServer(down) as server, httpx.AsyncClient(base_url=f"{server.url}/api/v1") as http:
        response = await http.post(
            "/projects", json={"project_name": "Acme CRM"}, headers={"X-API-Key": key.key}, timeout=60
        )
        assert response.status_code == 503
        assert error_body(response) == {
            "error": {
                "code": "retryable_error",
                "category": "retryable",
                "message": "Temporary failure while queueing project generation.",
                "retryable": True,
                "details": {"retry_guidance": "Retry with exponential backoff."},
            }
        }
        assert response.headers["retry-after"]
        # Reads keep working from the projection while Temporal is down.
        listing = await http.get("/projects", headers={"X-API-Key": key.key})
        assert listing.status_code == 200 and listing.json()["total"] == 0
    with db.session() as session:
        assert session.scalar(select(func.count(Project.id))) == before


async def test_database_down_is_503_not_500(settings, make_key):
    import httpx

    key = make_key()
    # Nothing listens where the database should be: every request needing it is retryable.
    down_url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/test?connect_timeout=2"
    broken = settings.model_copy(update={"database_url": down_url})
    async with LiveServer(broken) as server, httpx.AsyncClient(base_url=f"{server.url}/api/v1") as http:
        response = await http.get("/projects", headers={"X-API-Key": key.key})
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "retryable_error"
    assert response.json()["error"]["retryable"] is True
