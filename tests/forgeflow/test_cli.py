"""The `forgeflow` command line, run as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from store.keys import authenticate


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forgeflow", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_keys_create_json_makes_a_working_scoped_key(database_url, db, tmp_path):
    env = {"FORGEFLOW_DATABASE_URL": database_url, "FORGEFLOW_DATA_DIR": str(tmp_path)}
    result = run_cli(
        "keys",
        "create",
        "--owner",
        "cli-owner",
        "--email",
        "cli@example.test",
        "--scopes",
        "projects:read,projects:create",
        "--quota",
        "7",
        "--json",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["key"].startswith("ff_")
    assert created["scopes"] == ["projects:create", "projects:read"]
    assert created["project_quota"] == 7
    with db.session() as session:
        identity = authenticate(session, plaintext=created["key"])
    assert identity is not None and identity.owner_name == "cli-owner" and identity.project_quota == 7
    assert identity.has_scope("projects:read") and not identity.has_scope("projects:approve")


def test_keys_create_without_scopes_is_a_legacy_key(database_url, db, tmp_path):
    env = {"FORGEFLOW_DATABASE_URL": database_url, "FORGEFLOW_DATA_DIR": str(tmp_path)}
    result = run_cli("keys", "create", "--owner", "legacy", "--email", "l@example.test", "--json", env=env)
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["scopes"] is None
    with db.session() as session:
        identity = authenticate(session, plaintext=created["key"])
    assert identity is not None and identity.has_scope("projects:approve")


def test_unknown_scope_is_a_usage_error_without_traceback(tmp_path):
    env = {"FORGEFLOW_DATA_DIR": str(tmp_path)}
    result = run_cli("keys", "create", "--owner", "x", "--email", "x@y.z", "--scopes", "projects:everything", env=env)
    assert result.returncode == 2
    assert "unknown scope 'projects:everything'" in result.stderr
    assert "Traceback" not in result.stderr
