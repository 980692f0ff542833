"""Spec versions one by one and the diff between two: what a reviewer reads before approving."""

from __future__ import annotations

import asyncio

from tests.api.test_lifecycle import wait_for_status
from tests.support import error_body

GATED = {"project_name": "Gadget Kit", "template": "widget-lib", "require_approval": True}
# A client's feedback is data: it reaches the spec, and the diff, literally.
FEEDBACK = "Add a CLI {{ 7 * 7 }} </script>"


async def test_diff_between_spec_versions(http, worker, make_key):
    auth = {"X-API-Key": make_key().key}
    project_id = (await http.post("/projects", json=GATED, headers=auth)).json()["project"]["id"]
    await wait_for_status(http, project_id, auth, "awaiting_approval")
    regenerated = await http.post(
        f"/projects/{project_id}/regenerate", json={"feedback": FEEDBACK, "version": 1}, headers=auth
    )
    assert regenerated.status_code == 200, regenerated.text
    deadline = asyncio.get_running_loop().time() + 20
    while (await http.get(f"/projects/{project_id}/spec", headers=auth)).json()["version"] != 2:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    base = f"/projects/{project_id}/spec/versions"

    one = (await http.get(f"{base}/1", headers=auth)).json()
    two = (await http.get(f"{base}/2", headers=auth)).json()
    assert (one["version"], two["version"]) == (1, 2) and two["feedback"] == [FEEDBACK]
    assert two == (await http.get(f"/projects/{project_id}/spec", headers=auth)).json()

    forward = (await http.get(f"{base}/1/diff/2", headers=auth)).json()
    assert (forward["from_version"], forward["to_version"]) == (1, 2)
    changed = {d["name"]: d for d in forward["documents"]}
    assert set(changed) == {"SPEC.md"} and changed["SPEC.md"]["change"] == "modified"
    diff = changed["SPEC.md"]["diff"]
    assert diff.startswith("--- a/SPEC.md\n+++ b/SPEC.md\n@@ ")
    assert f"+- {FEEDBACK}\n" in diff and "+## Reviewer feedback\n" in diff
    # Every changed line of the diff is one the newer version has and the older lacks.
    added = [line[1:] for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert all(line in two["documents"]["SPEC.md"].splitlines() for line in added)
    assert not any(line in one["documents"]["SPEC.md"].splitlines() for line in added if line.strip())

    backward = (await http.get(f"{base}/2/diff/1", headers=auth)).json()
    assert f"-- {FEEDBACK}\n" in backward["documents"][0]["diff"]
    assert (await http.get(f"{base}/2/diff/2", headers=auth)).json()["documents"] == []

    missing = await http.get(f"{base}/1/diff/3", headers=auth)
    assert missing.status_code == 404 and error_body(missing)["error"]["code"] == "spec_version_not_found"
    assert (await http.get(f"{base}/0", headers=auth)).status_code == 422
    assert (await http.get(f"{base}/x/diff/1", headers=auth)).status_code == 422
    # Another owner's project is not found, whatever the version.
    stranger = {"X-API-Key": make_key().key}
    assert (await http.get(f"{base}/1/diff/2", headers=stranger)).status_code == 404
