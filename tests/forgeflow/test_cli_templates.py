"""`forgeflow templates [ID]`, run as a real process against the real API."""

from __future__ import annotations

import json

from tests.forgeflow.test_cli_projects import cli


async def test_templates_lists_them_and_shows_one_with_its_variables(api, make_key):
    env = {"FORGEFLOW_API_URL": api.url, "FORGEFLOW_API_KEY": make_key(scopes=["projects:read"]).key}

    listed = await cli("templates", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines() if line.strip()}
    assert "djass-saas" in rows and "(default)" in rows["djass-saas"] and "Djass SaaS starter" in rows["djass-saas"]
    assert "widget-lib" in rows

    shown = await cli("templates", "widget-lib", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "untrusted" in shown.stdout.splitlines()[0]
    license_row = next(line for line in shown.stdout.splitlines() if line.startswith("license"))
    assert license_row.split()[:3] == ["license", "single_choice", "MIT"] and "Apache-2.0" in license_row

    # --json is the API's body, unmodified.
    raw = await cli("templates", "widget-lib", "--json", env=env)
    body = json.loads(raw.stdout)
    assert body["id"] == "widget-lib" and {v["name"] for v in body["variables"]} >= {"license", "use_cli"}
    everything = json.loads((await cli("templates", "--json", env=env)).stdout)
    assert body in everything["templates"]

    # An unknown id: the API's 404, exit 3, the ids there are.
    missing = await cli("templates", "no-such", env=env)
    assert missing.returncode == 3
    assert "template_not_found (HTTP 404)" in missing.stderr and "djass-saas" in missing.stderr
