"""The webhook signing secret over real HTTP: shown once, never read back, stored encrypted."""

from __future__ import annotations

import base64
import os
import stat
from datetime import datetime

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from store.models import WebhookSecret
from store.webhooks import load_cipher, load_webhook_secret


def auth(key) -> dict[str, str]:
    return {"X-API-Key": key.key}


async def test_post_issues_a_standard_webhooks_secret_once(http, make_key, db, settings):
    key = make_key()
    response = await http.post("/webhook-secret", headers=auth(key))
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"secret", "created_at", "rotated_at"} and body["rotated_at"] is None
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert 24 <= len(base64.b64decode(secret.removeprefix("whsec_"))) <= 64
    Webhook(secret)  # the reference library accepts it
    # The worker's view: the same secret, decrypted with the server key.
    with db.session() as session:
        cipher = load_cipher(settings.secret_key, settings.data_dir)
        assert load_webhook_secret(session, owner_id=key.owner_id, cipher=cipher) == secret


async def test_get_says_whether_one_exists_and_never_shows_it(http, make_key):
    key = make_key()
    response = await http.get("/webhook-secret", headers=auth(key))
    assert response.status_code == 200
    assert response.json() == {"exists": False, "created_at": None, "rotated_at": None}
    issued = (await http.post("/webhook-secret", headers=auth(key))).json()
    response = await http.get("/webhook-secret", headers=auth(key))
    state = response.json()
    assert state["exists"] is True and state["rotated_at"] is None
    assert datetime.fromisoformat(state["created_at"]) == datetime.fromisoformat(issued["created_at"])
    assert issued["secret"] not in response.text and "secret" not in state


async def test_rotation_replaces_the_secret(http, make_key, db, settings):
    key = make_key()
    first = await http.post("/webhook-secret", headers=auth(key))
    second = await http.post("/webhook-secret", headers=auth(key))
    assert (first.status_code, second.status_code) == (201, 200)
    old, new = first.json(), second.json()
    assert new["secret"] != old["secret"] and new["secret"].startswith("whsec_")
    assert new["created_at"] == old["created_at"] and new["rotated_at"] is not None
    state = (await http.get("/webhook-secret", headers=auth(key))).json()
    assert state["rotated_at"] is not None
    with db.session() as session:
        cipher = load_cipher(settings.secret_key, settings.data_dir)
        assert load_webhook_secret(session, owner_id=key.owner_id, cipher=cipher) == new["secret"]
        assert len(session.scalars(select(WebhookSecret).where(WebhookSecret.owner_id == key.owner_id)).all()) == 1


async def test_each_owner_has_their_own_secret(http, make_key):
    a, b = make_key(), make_key()
    secret_a = (await http.post("/webhook-secret", headers=auth(a))).json()["secret"]
    assert (await http.get("/webhook-secret", headers=auth(b))).json()["exists"] is False
    secret_b = (await http.post("/webhook-secret", headers=auth(b))).json()["secret"]
    assert secret_a != secret_b


async def test_the_database_holds_no_plaintext(http, make_key, db):
    key = make_key()
    secret = (await http.post("/webhook-secret", headers=auth(key))).json()["secret"]
    with db.session() as session:
        stored = session.scalars(
            select(WebhookSecret.encrypted_secret).where(WebhookSecret.owner_id == key.owner_id)
        ).one()
    assert secret not in stored
    assert secret.removeprefix("whsec_") not in stored
    assert base64.b64decode(secret.removeprefix("whsec_")).hex() not in stored
    assert stored.startswith("gAAAAA")  # a Fernet token


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_key_is_required(http, method):
    response = await http.request(method, "/webhook-secret")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth_required"
    response = await http.request(method, "/webhook-secret", headers={"X-API-Key": "ff_unknown"})
    assert response.status_code == 401


async def test_scopes(http, make_key):
    reader = make_key(scopes=["projects:read"])
    response = await http.post("/webhook-secret", headers=auth(reader))
    assert response.status_code == 403
    assert response.json()["error"]["details"]["required_scope"] == "projects:create"
    assert (await http.get("/webhook-secret", headers=auth(reader))).status_code == 200

    creator = make_key(scopes=["projects:create"])
    assert (await http.post("/webhook-secret", headers=auth(creator))).status_code == 201
    response = await http.get("/webhook-secret", headers=auth(creator))
    assert response.status_code == 403
    assert response.json()["error"]["details"]["required_scope"] == "projects:read"

    legacy = make_key()  # no scopes: all of them
    assert (await http.post("/webhook-secret", headers=auth(legacy))).status_code == 201


async def test_without_a_configured_key_a_private_one_is_made_once(http, make_key, settings):
    assert settings.secret_key is None
    await http.post("/webhook-secret", headers=auth(make_key()))
    path = settings.data_dir / "secret.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    contents = path.read_text()
    await http.post("/webhook-secret", headers=auth(make_key()))
    assert path.read_text() == contents
