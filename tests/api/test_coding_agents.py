"""Agent mode, part 2, end to end over real HTTP, a real Temporal server, real git and the
real sandbox: forgeflow-fake plans three tasks, and a ``command`` coding agent (a real
program, tests/fixtures/agents/fake_coder.py) builds each in its own work tree, started from
its dependencies' merged commit; the project's history is those branches merged; an agent
that writes outside its scope or makes a symlink out fails its task, named."""

from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from agents.fake_llm import FakeLlm, Reply
from tests.api.agent_support import with_command_agent
from tests.api.test_lifecycle import wait_for_status
from tests.api.test_quickstart import poll_until_done
from tests.api.test_template_updates import run_ends


def plan(*tasks: tuple[str, str, list[str]]) -> dict[str, Any]:
    return {
        "tasks": [
            {
                "id": slug,
                "title": slug.title(),
                "instructions": f"Build {slug}.",
                "path_scope": [scope],
                "dependencies": deps,
            }
            for slug, scope, deps in tasks
        ]
    }


THREE = plan(("api", "app/**", []), ("docs", "docs/**", []), ("glue", "tests/**", ["api", "docs"]))


@pytest.fixture
def flaky_marker(tmp_path):
    marker = tmp_path / "switches" / "fail-flaky"
    marker.parent.mkdir()
    return marker


@pytest.fixture
def settings(settings, fake, flaky_marker):
    return with_command_agent(settings, fake, options=f"--fail-if {flaky_marker} ", readable=[flaky_marker.parent])


async def create(http, auth, **agent: Any) -> int:
    body = {"project_name": "Task Board", "template": "empty", "prompt": "A task board.", "agent": agent}
    created = await http.post("/projects", json=body, headers=auth)
    assert created.status_code == 201, created.text
    return int(created.json()["project"]["id"])


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


async def test_a_coding_agent_builds_each_task_on_its_dependencies(http, worker, make_key, fake: FakeLlm, tmp_path):
    auth = {"X-API-Key": make_key().key}
    fake.script(Reply(), Reply(), Reply(arguments=THREE))  # clarify, spec, plan
    project_id = await create(http, auth)
    status = await poll_until_done(http, project_id, auth, timeout=120)
    assert status["status"] == "ready", status

    with zipfile.ZipFile(io.BytesIO((await http.get(f"/projects/{project_id}/artifact", headers=auth)).content)) as zf:
        names = set(zf.namelist())
    assert {
        "task_board/README.md",
        "task_board/app/api.py",
        "task_board/docs/docs.py",
        "task_board/tests/glue.py",
    } <= names

    bundle = await http.get(f"/projects/{project_id}/bundle", headers=auth)
    (tmp_path / "p.bundle").write_bytes(bundle.content)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(tmp_path / "p.bundle"), str(clone)], check=True)
    branches = git(clone, "branch", "-r").split()
    assert {"origin/feat/task-001-api", "origin/feat/task-002-docs", "origin/feat/task-003-glue"} <= set(branches)
    # glue started from api and docs merged: its branch holds their files, its commit only its own.
    assert "TASK = 'api'" in git(clone, "show", "origin/feat/task-003-glue:app/api.py")
    changed = git(clone, "show", "--name-only", "--format=", "origin/feat/task-003-glue").split()
    assert changed == ["tests/NOTES.md", "tests/glue.py"]
    merges = git(clone, "log", "--merges", "--format=%s", "main").splitlines()
    assert len(merges) >= 3 and all(m.startswith("Merge branch 'feat/task-") for m in merges[:3])

    tasks = (await http.get(f"/projects/{project_id}/runs/1/tasks", headers=auth)).json()["tasks"]
    assert {t["id"]: (t["status"], t["files"]) for t in tasks} == {
        "api": ("succeeded", ["app/NOTES.md", "app/api.py"]),
        "docs": ("succeeded", ["docs/NOTES.md", "docs/docs.py"]),
        "glue": ("succeeded", ["tests/NOTES.md", "tests/glue.py"]),
    }
    assert all(len(t["commit_sha"]) == 40 for t in tasks)
    usage = (await http.get(f"/projects/{project_id}/usage", headers=auth)).json()
    by_task = {t["task_id"]: t for t in usage["by_task"]}
    assert {k: (v["input_tokens"], v["output_tokens"]) for k, v in by_task.items()} == {
        k: (1000, 200) for k in ("api", "docs", "glue")
    }
    assert abs(sum(v["cost_usd"] for v in by_task.values()) - 0.03) < 1e-9

    summary = (await http.get(f"/projects/{project_id}/runs/1/summary", headers=auth)).json()
    changed = {f["path"]: (f["status"], f["additions"]) for f in summary["changed_files"]}
    assert changed["app/api.py"] == ("added", 3) and changed["README.md"][0] == "added"
    assert {t["id"]: t["summary"] for t in summary["tasks"]} == {k: f"built {k}" for k in ("api", "docs", "glue")}
    assert summary["risks"] == [f"{k}: untested (a fake agent wrote it)" for k in ("api", "docs", "glue")]
    assert (
        summary["usage"]["requests"] == 6 and summary["head_commit"] == git(clone, "rev-parse", "origin/main").strip()
    )


@pytest.mark.parametrize(("slug", "named"), [("api-outside", "elsewhere.txt"), ("api-link", "app/passwd")])
async def test_an_agent_that_breaks_the_rules_fails_its_task_named(http, worker, make_key, fake: FakeLlm, slug, named):
    auth = {"X-API-Key": make_key().key}
    fake.script(Reply(), Reply(), Reply(arguments=plan((slug, "app/**", []), ("docs", "docs/**", []))))
    project_id = await create(http, auth)
    status = await poll_until_done(http, project_id, auth, timeout=120)
    assert status["status"] == "failed", status
    assert f"Task {slug} failed" in status["error_message"] and named in status["error_message"], status
    tasks = {t["id"]: t for t in (await http.get(f"/projects/{project_id}/runs/1/tasks", headers=auth)).json()["tasks"]}
    assert tasks[slug]["status"] == "failed" and named in tasks[slug]["error"]


async def test_a_coding_agent_the_server_does_not_offer_is_refused(http, make_key):
    auth = {"X-API-Key": make_key().key}
    body = {"project_name": "X", "template": "empty", "prompt": "A thing.", "agent": {"coding_agent": "codex"}}
    refused = await http.post("/projects", json=body, headers=auth)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "coding_agent_unavailable"
    assert refused.json()["error"]["details"]["available"] == ["command"]
    hostile = await http.post("/projects", json={**body, "agent": {"coding_agent": "rm -rf /"}}, headers=auth)
    assert hostile.status_code == 400 and hostile.json()["error"]["details"]["field"].startswith("agent")


async def test_a_retry_keeps_the_finished_tasks_and_asks_no_model_again(
    http, worker, make_key, fake: FakeLlm, flaky_marker
):
    auth = {"X-API-Key": make_key().key}
    flaky_marker.write_text("fail")
    shape = plan(("api", "app/**", []), ("docs", "docs/**", []), ("glue-flaky", "tests/**", ["api", "docs"]))
    fake.script(Reply(), Reply(), Reply(arguments=shape))
    project_id = await create(http, auth)
    failed = await poll_until_done(http, project_id, auth, timeout=120)
    assert failed["status"] == "failed" and "glue-flaky" in failed["error_message"], failed
    first = {t["id"]: t for t in (await http.get(f"/projects/{project_id}/runs/1/tasks", headers=auth)).json()["tasks"]}
    assert first["glue-flaky"]["status"] == "failed" and first["api"]["status"] == "succeeded"
    asked = fake.count

    flaky_marker.unlink()
    retried = await http.post(f"/projects/{project_id}/retry", headers=auth)
    assert retried.status_code == 202 and retried.json()["run"] == 2, retried.text
    ready = await run_ends(http, auth, project_id, 2)
    assert ready["status"] == "ready", ready
    assert fake.count == asked  # the approved spec and plan, as they were: no model request
    second = {
        t["id"]: t for t in (await http.get(f"/projects/{project_id}/runs/2/tasks", headers=auth)).json()["tasks"]
    }
    for kept in ("api", "docs"):  # the same commits: kept, not rebuilt
        assert second[kept]["status"] == "succeeded" and second[kept]["attempts"] == 0
        assert (second[kept]["commit_sha"], second[kept]["files"]) == (first[kept]["commit_sha"], first[kept]["files"])
    assert second["glue-flaky"]["status"] == "succeeded" and second["glue-flaky"]["commit_sha"]
    events = (await http.get(f"/projects/{project_id}/events", params={"type": "tasks_kept"}, headers=auth)).json()
    assert [e["payload"] for e in events["events"]] == [{"run": 1, "tasks": ["api", "docs"]}]
    with zipfile.ZipFile(io.BytesIO((await http.get(f"/projects/{project_id}/artifact", headers=auth)).content)) as zf:
        assert {"task_board/app/api.py", "task_board/tests/glue_flaky.py"} <= set(zf.namelist())


async def test_the_budget_stops_new_tasks_and_a_raise_lets_them_go_on(http, worker, make_key, fake: FakeLlm):
    auth = {"X-API-Key": make_key().key}
    fake.script(Reply(), Reply(), Reply(arguments=THREE))
    body = {"project_name": "Task Board", "template": "empty", "prompt": "A task board.", "agent": {}}
    created = await http.post("/projects", json={**body, "require_approval": True}, headers=auth)
    project_id = created.json()["project"]["id"]
    await wait_for_status(http, project_id, auth, "awaiting_approval")
    planned = (await http.get(f"/projects/{project_id}/usage", headers=auth)).json()["total_tokens"]
    # Room for what the two independent tasks start with, not for the third after them.
    tight = await http.post(f"/projects/{project_id}/budget", json={"max_total_tokens": planned + 1500}, headers=auth)
    assert tight.status_code == 200, tight.text
    await http.post(f"/projects/{project_id}/approve", json={}, headers=auth)
    await wait_for_status(http, project_id, auth, "awaiting_budget")
    stopped = await http.get(f"/projects/{project_id}/events", params={"type": "budget_exceeded"}, headers=auth)
    (event,) = stopped.json()["events"]
    assert event["payload"]["phase"] == "tasks" and event["payload"]["limits"] == ["max_total_tokens"]
    tasks = {
        t["id"]: t["status"]
        for t in (await http.get(f"/projects/{project_id}/runs/1/tasks", headers=auth)).json()["tasks"]
    }
    assert tasks == {"api": "succeeded", "docs": "succeeded", "glue": "pending"}  # no task started past it

    raised = await http.post(
        f"/projects/{project_id}/budget", json={"max_total_tokens": planned + 10_000}, headers=auth
    )
    assert raised.status_code == 200, raised.text
    done = await poll_until_done(http, project_id, auth, timeout=120)
    assert done["status"] == "ready", done
    usage = (await http.get(f"/projects/{project_id}/usage", headers=auth)).json()
    assert usage["total_tokens"] == planned + 3 * 1200
