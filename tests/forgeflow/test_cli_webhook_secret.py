"""`forgeflow keys webhook-secret`, run as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from cryptography.fernet import Fernet

from store.webhooks import load_cipher, load_webhook_secret


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forgeflow", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_webhook_secret_is_issued_rotated_and_stored_encrypted(database_url, db, tmp_path):
    server_key = Fernet.generate_key().decode()
    env = {
        "FORGEFLOW_DATABASE_URL": database_url,
        "FORGEFLOW_DATA_DIR": str(tmp_path),
        "FORGEFLOW_SECRET_KEY": server_key,
    }
    created = run_cli("keys", "create", "--owner", "hooked", "--email", "h@example.test", "--json", env=env)
    assert created.returncode == 0, created.stderr
    owner_id = json.loads(created.stdout)["owner_id"]

    first = run_cli("keys", "webhook-secret", "--owner", "hooked", "--json", env=env)
    assert first.returncode == 0, first.stderr
    issued = json.loads(first.stdout)
    assert issued["owner"] == "hooked" and issued["owner_id"] == owner_id and issued["rotated_at"] is None
    assert issued["secret"].startswith("whsec_")

    second = run_cli("keys", "webhook-secret", "--owner", "hooked", env=env)
    assert second.returncode == 0, second.stderr
    assert "Shown once" in second.stdout and "rotated" in second.stdout
    rotated = second.stdout.strip().splitlines()[-1]
    assert rotated.startswith("whsec_") and rotated != issued["secret"]

    with db.session() as session:
        stored = load_webhook_secret(session, owner_id=owner_id, cipher=load_cipher(server_key, tmp_path))
    assert stored == rotated
    assert not (tmp_path / "secret.key").exists()  # the configured key was used


def test_unknown_owner_and_bad_server_key_are_clear_errors(database_url, db, tmp_path):
    env = {"FORGEFLOW_DATABASE_URL": database_url, "FORGEFLOW_DATA_DIR": str(tmp_path)}
    result = run_cli("keys", "webhook-secret", "--owner", "nobody-at-all", env=env)
    assert result.returncode != 0 and "no owner named 'nobody-at-all'" in result.stderr
    result = run_cli("keys", "webhook-secret", "--owner", "x", env={**env, "FORGEFLOW_SECRET_KEY": "changeme"})
    assert result.returncode != 0 and "Fernet" in result.stderr
