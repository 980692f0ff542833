"""Verification through the real stack (Temporal, worker, HTTP): a third-party template's
valid files that strict parsers refuse end ready with warnings on the run's record; only
the template's declared checks and expected outputs can fail its runs."""

from __future__ import annotations

import sys

import pytest

from tests.api.test_quickstart import poll_until_done


@pytest.fixture
def settings(settings):
    # failing-check-lib's check runs only in a trusted template; polyglot-lib stays untrusted.
    return settings.model_copy(update={"trusted_templates": "failing-check-lib"})


async def generate(http, make_key, template: str, name: str) -> tuple[dict, dict]:
    """The finished project's status and its first run, as the API serves them."""
    auth = {"X-API-Key": make_key().key}
    created = await http.post("/projects", json={"project_name": name, "template": template}, headers=auth)
    assert created.status_code == 201, created.text
    project_id = created.json()["project"]["id"]
    status = await poll_until_done(http, project_id, auth)
    run = await http.get(f"/projects/{project_id}/runs/1", headers=auth)
    assert run.status_code == 200, run.text
    return status, run.json()


async def test_third_party_files_end_ready_with_warnings_on_record(http, worker, make_key):
    status, run = await generate(http, make_key, "polyglot-lib", "Poly Glot")
    assert status["status"] == "ready", status
    verification = run["verification"]
    assert verification["ok"] is True and verification["errors"] == []
    # The commented devcontainer.json, the tsconfig.json with trailing commas, .vscode's
    # settings, the CloudFormation stack with !Ref/!GetAtt/!Sub, the GitLab CI file with
    # !reference and pyproject.toml all parsed: none is a finding.
    warned = {f["path"]: f for f in verification["findings"]}
    expected = {"scaffold/values.json"}  # a template for another tool: not JSON yet
    if sys.version_info < (3, 12):
        expected.add("src/poly_glot/types.py")  # PEP 695, in a project that declares 3.12
    assert set(warned) == expected
    assert verification["warnings"] == verification["findings_total"] == len(expected)
    assert verification["files_checked"] == 9 - len(expected)
    assert warned["scaffold/values.json"]["rule"] == "json"
    assert all(f["severity"] == "warning" and f["message"] for f in warned.values())
    if sys.version_info < (3, 12):
        python = warned["src/poly_glot/types.py"]
        assert python["rule"] == "python" and "declares Python 3.12" in python["message"]


async def test_a_declared_check_that_fails_still_fails_the_run(http, worker, make_key):
    status, run = await generate(http, make_key, "failing-check-lib", "Failing")
    assert status["status"] == "failed", status
    assert run["status"] == "failed" and "the check says no" in run["error_message"]
    verification = run["verification"]
    assert verification["ok"] is False
    assert verification["checks"] == ["failed: python -c \"raise SystemExit('the check says no')\""]
    [finding] = verification["findings"]
    assert (finding["path"], finding["rule"], finding["severity"]) == ("", "check", "error")
    assert "the check says no" in finding["message"]
