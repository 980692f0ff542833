"""Verify, then fix, end to end (real HTTP, Temporal, git, sandbox): a coding agents' run
whose merged branches fail the template's check goes back to the same coding agent as a
fix task, with the check's output, on top of the merged main, and is verified again; at
most ``agent.max_fix_attempts`` fix tasks in a row, then the run fails with the output.

The template's check wants ``app/fix_2.py``, which the fake coder writes as the second
fix task (it writes ``<first scope dir>/<slug>.py``): two fixes turn it green, one does not."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from agents.fake_llm import FakeLlm, Reply
from tests.api.agent_support import with_command_agent
from tests.api.test_quickstart import poll_until_done

EMPTY = Path(__file__).parents[2] / "engine" / "templates" / "empty"
WANTED = "FIX-ME: app/fix_2.py is missing"
CHECK = f"python -c \"import pathlib, sys; sys.exit(0 if pathlib.Path('app/fix_2.py').exists() else '{WANTED}')\""
PLAN = {
    "tasks": [
        {"id": "api", "title": "API", "instructions": "Build the API.", "path_scope": ["app/**"], "dependencies": []},
        {"id": "docs", "title": "Docs", "instructions": "Write docs.", "path_scope": ["docs/**"], "dependencies": []},
    ]
}


@pytest.fixture
def settings(settings, fake, tmp_path):
    # The empty template with one check the fix tasks can turn green, trusted (only a trusted
    # template's checks run), found before the test fixtures.
    templates = tmp_path / "templates"
    shutil.copytree(EMPTY, templates / "fixable-lib")
    manifest = templates / "fixable-lib" / "forgeflow.yaml"
    quoted = "'" + CHECK.replace("'", "''") + "'"  # YAML's single-quoted string
    manifest.write_text(manifest.read_text().replace("checks: []", f"checks:\n  - {quoted}"))
    return with_command_agent(
        settings,
        fake,
        template_path=f"{templates}{os.pathsep}{settings.template_path}",
        trusted_templates="fixable-lib",
    )


async def create(http, auth, **agent: Any) -> int:
    body = {"project_name": "Fix Me", "template": "fixable-lib", "prompt": "A fixable thing.", "agent": agent}
    created = await http.post("/projects", json=body, headers=auth)
    assert created.status_code == 201, created.text
    return int(created.json()["project"]["id"])


async def events(http, auth, project_id: int, type: str) -> list[dict[str, Any]]:
    found = await http.get(f"/projects/{project_id}/events", params={"type": type}, headers=auth)
    return [e["payload"] for e in found.json()["events"]]


async def test_a_failing_check_goes_to_fix_tasks_until_it_passes(http, worker, make_key, fake: FakeLlm, tmp_path):
    auth = {"X-API-Key": make_key().key}
    fake.script(Reply(), Reply(), Reply(arguments=PLAN))
    project_id = await create(http, auth)
    status = await poll_until_done(http, project_id, auth, timeout=180)
    assert status["status"] == "ready", status

    failed = await events(http, auth, project_id, "checks_failed")
    assert [(e["attempt"], e["fix_task"], e["check"]) for e in failed] == [(0, "fix-1", CHECK), (1, "fix-2", CHECK)]
    assert all(WANTED in e["output"] and e["max_fix_attempts"] == 2 for e in failed)

    tasks = {t["id"]: t for t in (await http.get(f"/projects/{project_id}/runs/1/tasks", headers=auth)).json()["tasks"]}
    assert {k: (t["status"], t["branch_name"]) for k, t in tasks.items() if k.startswith("fix")} == {
        "fix-1": ("succeeded", "feat/task-003-fix-1"),
        "fix-2": ("succeeded", "feat/task-004-fix-2"),
    }
    # Scope: every path the plan's tasks may change; on top of every task.
    assert tasks["fix-2"]["definition"]["path_scope"] == ["app/**", "docs/**"]
    assert tasks["fix-2"]["definition"]["dependencies"] == ["api", "docs", "fix-1"]
    run = (await http.get(f"/projects/{project_id}/runs/1", headers=auth)).json()
    assert run["verification"]["ok"] is True and run["verification"]["checks"][-1] == f"passed: {CHECK}"

    # The fix task was given the check's output, literal (the fake coder copies it to FIXES.md).
    with zipfile.ZipFile(io.BytesIO((await http.get(f"/projects/{project_id}/artifact", headers=auth)).content)) as zf:
        fixes = zf.read("fix_me/app/FIXES.md").decode()
        assert {"fix_me/app/fix_1.py", "fix_me/app/fix_2.py", "fix_me/docs/docs.py"} <= set(zf.namelist())
    assert fixes.count(WANTED) == 2 and "## fix-1: check output" in fixes

    # Both fix branches are in the history, each started from the merged main before it.
    (tmp_path / "p.bundle").write_bytes((await http.get(f"/projects/{project_id}/bundle", headers=auth)).content)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(tmp_path / "p.bundle"), str(clone)], check=True)
    git = lambda *args: subprocess.run(["git", *args], cwd=clone, capture_output=True, text=True).stdout  # noqa: E731
    assert "TASK = 'api'" in git("show", "origin/feat/task-004-fix-2:app/api.py")
    assert git("show", "origin/feat/task-004-fix-2:app/fix_1.py")  # fix-2 started after fix-1's merge
    assert git("show", "--name-only", "--format=", "origin/feat/task-003-fix-1").split() == [
        "app/FIXES.md",
        "app/NOTES.md",
        "app/fix_1.py",
    ]

    usage = (await http.get(f"/projects/{project_id}/usage", headers=auth)).json()
    assert {t["task_id"] for t in usage["by_task"]} == {"api", "docs", "fix-1", "fix-2"}  # counts like any task


async def test_a_check_still_failing_after_the_fix_attempts_fails_the_run_with_its_output(
    http, worker, make_key, fake: FakeLlm
):
    auth = {"X-API-Key": make_key().key}
    fake.script(Reply(), Reply(), Reply(arguments=PLAN))
    project_id = await create(http, auth, max_fix_attempts=1)
    status = await poll_until_done(http, project_id, auth, timeout=180)
    assert status["status"] == "failed", status
    assert WANTED in status["error_message"] and "after 1 fix task" in status["error_message"], status
    failed = await events(http, auth, project_id, "checks_failed")
    assert [(e["attempt"], e["fix_task"]) for e in failed] == [(0, "fix-1"), (1, None)]
    tasks = {
        t["id"]: t["status"]
        for t in (await http.get(f"/projects/{project_id}/runs/1/tasks", headers=auth)).json()["tasks"]
    }
    assert tasks == {"api": "succeeded", "docs": "succeeded", "fix-1": "succeeded"}
    run = (await http.get(f"/projects/{project_id}/runs/1", headers=auth)).json()
    assert run["verification"]["ok"] is False


async def test_no_fix_attempts_fail_at_the_first_failing_check(http, worker, make_key, fake: FakeLlm):
    auth = {"X-API-Key": make_key().key}
    fake.script(Reply(), Reply(), Reply(arguments=PLAN))
    project_id = await create(http, auth, max_fix_attempts=0)
    status = await poll_until_done(http, project_id, auth, timeout=120)
    assert status["status"] == "failed" and WANTED in status["error_message"], status
    tasks = (await http.get(f"/projects/{project_id}/runs/1/tasks", headers=auth)).json()["tasks"]
    assert sorted(t["id"] for t in tasks) == ["api", "docs"]


@pytest.mark.parametrize(
    ("agent", "field"),
    [
        ({"max_fix_attempts": 6}, "agent.max_fix_attempts"),
        ({"max_fix_attempts": -1}, "agent.max_fix_attempts"),
        ({"max_fix_attempts": "2"}, "agent.max_fix_attempts"),
        ({"review": "code"}, "agent.review"),
    ],
)
async def test_fix_attempts_and_review_out_of_bounds_are_400s_naming_the_field(http, make_key, agent, field):
    auth = {"X-API-Key": make_key().key}
    body = {"project_name": "Fix Me", "template": "fixable-lib", "prompt": "A thing.", "agent": agent}
    refused = await http.post("/projects", json=body, headers=auth)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["details"]["field"] == field, refused.text
