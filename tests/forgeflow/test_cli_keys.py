"""`forgeflow keys` (issue 13, findings 5 and 12), run as a real process against the
database a real API serves: list, revoke, quotas kept, admin only when asked for."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import httpx
import pytest

from store.keys import hash_key
from tests.support import LiveServer


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forgeflow", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def cli(database_url, tmp_path):
    env = {"FORGEFLOW_DATABASE_URL": database_url, "FORGEFLOW_DATA_DIR": str(tmp_path), "FORGEFLOW_PROJECT_QUOTA": "33"}

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = run_cli("keys", *args, env=env)
        if ok:
            assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        return result

    return run


def created(cli, owner: str, *extra: str) -> dict:
    return json.loads(cli("create", "--owner", owner, "--email", f"{owner}@example.test", *extra, "--json").stdout)


async def test_an_existing_owner_keeps_its_quota(cli):
    """Before, every `keys create` reset the owner's quota to FORGEFLOW_PROJECT_QUOTA."""
    assert created(cli, "quota-owner", "--quota", "7")["project_quota"] == 7
    assert created(cli, "quota-owner")["project_quota"] == 7
    assert created(cli, "quota-owner", "--scopes", "projects:read")["project_quota"] == 7
    assert created(cli, "quota-owner", "--quota", "9")["project_quota"] == 9
    assert created(cli, "quota-new")["project_quota"] == 33  # a new owner: FORGEFLOW_PROJECT_QUOTA
    said = cli("create", "--owner", "quota-owner", "--email", "q@example.test").stdout
    assert "Project quota of quota-owner: 9" in said


async def test_admin_only_when_asked_for(cli, http):
    legacy = created(cli, "cli-admin")
    assert legacy["scopes"] is None
    refused = await http.get("/admin/stats", headers={"X-API-Key": legacy["key"]})
    assert refused.status_code == 403 and refused.json()["error"]["details"]["required_scope"] == "admin"
    admin = created(cli, "cli-admin", "--scopes", "admin")
    assert (await http.get("/admin/stats", headers={"X-API-Key": admin["key"]})).status_code == 200
    said = cli("create", "--owner", "cli-admin", "--email", "a@example.test").stdout
    assert "legacy (projects:approve, projects:cancel, projects:create, projects:read)" in said


async def test_list_shows_each_key_but_never_the_key(cli, http):
    legacy = created(cli, "lister")
    reader = created(cli, "lister", "--scopes", "projects:read")
    created(cli, "someone-else")
    assert (await http.get("/projects", headers={"X-API-Key": reader["key"]})).status_code == 200
    listed = json.loads(cli("list", "--owner", "lister", "--json").stdout)
    assert [k["key_id"] for k in listed] == [legacy["key_id"], reader["key_id"]]
    first, second = listed
    assert set(first) == {
        "key_id",
        "prefix",
        "scopes",
        "legacy",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    }
    assert (first["scopes"], first["legacy"], first["last_used_at"]) == (None, True, None)
    assert (second["scopes"], second["legacy"]) == (["projects:read"], False)
    assert second["last_used_at"] is not None and second["last_used_at"] >= second["created_at"]
    assert first["prefix"] == legacy["key"][:10] and first["expires_at"] is None and first["revoked_at"] is None
    table = cli("list", "--owner", "lister").stdout
    assert "never" in table and "projects:read" in table and "active" in table
    for output in (table, json.dumps(listed)):
        for key in (legacy["key"], reader["key"]):
            assert key not in output and hash_key(key) not in output
    missing = cli("list", "--owner", "nobody-at-all", ok=False)
    assert missing.returncode == 1 and "no owner named 'nobody-at-all'" in missing.stderr


async def test_revoke_stops_the_key_in_the_running_api(cli, http):
    kept = created(cli, "revoker")
    revoked = created(cli, "revoker", "--scopes", "projects:read")
    for key in (kept, revoked):
        assert (await http.get("/projects", headers={"X-API-Key": key["key"]})).status_code == 200
    said = json.loads(cli("revoke", str(revoked["key_id"]), "--json").stdout)
    assert (said["key_id"], said["owner"], said["revoked_now"]) == (revoked["key_id"], "revoker", True)
    # The API trusts a key it checked for FORGEFLOW_AUTH_CACHE_SECONDS (5): refused within that.
    deadline = asyncio.get_running_loop().time() + 10
    while (await http.get("/projects", headers={"X-API-Key": revoked["key"]})).status_code != 401:
        assert asyncio.get_running_loop().time() < deadline, "the revoked key still works"
        await asyncio.sleep(0.25)
    assert (await http.get("/projects", headers={"X-API-Key": kept["key"]})).status_code == 200
    again = cli("revoke", str(revoked["key_id"]))
    assert "was already revoked" in again.stdout
    listed = {k["key_id"]: k for k in json.loads(cli("list", "--owner", "revoker", "--json").stdout)}
    assert listed[revoked["key_id"]]["revoked_at"] is not None and listed[kept["key_id"]]["revoked_at"] is None
    assert "revoked" in cli("list", "--owner", "revoker").stdout
    unknown = cli("revoke", "2147483000", ok=False)
    assert unknown.returncode == 1 and "no key with id 2147483000" in unknown.stderr


async def test_last_use_is_recorded_without_rate_limits_too(cli, settings):
    """Without rate limiting no hits are claimed; the key's use gets a write of its own."""
    key = created(cli, "unlimited", "--scopes", "projects:read")
    async with (
        LiveServer(settings.model_copy(update={"rate_limit_per_minute": 0})) as server,
        httpx.AsyncClient(base_url=f"{server.url}/api/v1") as http,
    ):
        for _ in range(3):
            response = await http.get("/projects", headers={"X-API-Key": key["key"]})
            assert response.status_code == 200 and "x-ratelimit-limit" not in response.headers
    (listed,) = json.loads(cli("list", "--owner", "unlimited", "--json").stdout)
    assert listed["last_used_at"] is not None and listed["last_used_at"] >= listed["created_at"]
