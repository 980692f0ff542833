"""The built-in coding agent end to end, over real HTTP, a real Temporal server and real
git: forgeflow-fake plans two tasks, then, as the built-in agent's model, writes each task's
files through its tools; the project's ZIP holds them and its usage is by task."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest

from agents.fake_llm import FakeLlm, Reply
from tests.api.agent_support import with_provider
from tests.api.test_coding_agents import create, plan
from tests.api.test_quickstart import poll_until_done

TWO = plan(("api", "app/**", []), ("glue", "tests/**", ["api"]))


@pytest.fixture
def settings(settings, fake):
    return with_provider(settings, fake, coding_agent="builtin")


def call(tool: str, **arguments: Any) -> Reply:
    return Reply(tool=tool, arguments=arguments)


async def test_the_builtin_agent_builds_each_task_with_its_file_tools(http, worker, make_key, fake: FakeLlm):
    auth = {"X-API-Key": make_key().key}
    fake.script(
        Reply(),  # clarify
        Reply(),  # spec
        Reply(arguments=TWO),  # plan
        # api: one refusal (outside its scope) corrected, then its file
        call("write_file", path="tests/api.py", content="API = 1\n"),
        call("write_file", path="app/api.py", content="def api():\n    return 1\n"),
        Reply(arguments={"summary": "built api", "risks": []}),
        # glue: starts from api's commit, reads its file, writes its own
        call("read_file", path="app/api.py"),
        call("write_file", path="tests/test_api.py", content="from app.api import api\n"),
        Reply(arguments={"summary": "built glue", "risks": ["untested"]}),
    )
    project_id = await create(http, auth, coding_agent="builtin")
    status = await poll_until_done(http, project_id, auth, timeout=120)
    assert status["status"] == "ready", status
    assert fake.count == 9
    assert "outside this task's path scope (app/**)" in fake.received[4].text
    assert "return 1" in fake.received[7].text

    with zipfile.ZipFile(io.BytesIO((await http.get(f"/projects/{project_id}/artifact", headers=auth)).content)) as zf:
        names = set(zf.namelist())
        assert zf.read("task_board/app/api.py") == b"def api():\n    return 1\n"
        assert zf.read("task_board/tests/test_api.py") == b"from app.api import api\n"
    assert "task_board/tests/api.py" not in names

    tasks = (await http.get(f"/projects/{project_id}/runs/1/tasks", headers=auth)).json()["tasks"]
    assert {t["id"]: (t["status"], t["files"]) for t in tasks} == {
        "api": ("succeeded", ["app/api.py"]),
        "glue": ("succeeded", ["tests/test_api.py"]),
    }
    usage = (await http.get(f"/projects/{project_id}/usage", headers=auth)).json()
    by_task = {t["task_id"]: t for t in usage["by_task"]}
    assert set(by_task) == {"api", "glue"}
    assert all(t["requests"] == 3 and t["input_tokens"] > 0 and t["output_tokens"] > 0 for t in by_task.values())


async def test_an_unscripted_fake_model_builds_each_task_as_forgeflow_dev_does(http, worker, make_key, fake: FakeLlm):
    """What ``forgeflow dev`` shows offline: nobody scripts forgeflow-fake, which plans the
    tasks and, as the built-in agent's model, writes each task's file and reports."""
    auth = {"X-API-Key": make_key().key}
    fake.script(Reply(), Reply(), Reply(arguments=TWO))  # the plan's shape; every task request unscripted
    project_id = await create(http, auth, coding_agent="builtin")
    status = await poll_until_done(http, project_id, auth, timeout=120)
    assert status["status"] == "ready", status
    tasks = (await http.get(f"/projects/{project_id}/runs/1/summary", headers=auth)).json()["tasks"]
    assert {t["id"]: (t["status"], t["files"], t["summary"]) for t in tasks} == {
        "api": ("succeeded", ["app/api.py"], "built api"),
        "glue": ("succeeded", ["tests/glue.py"], "built glue"),
    }
    with zipfile.ZipFile(io.BytesIO((await http.get(f"/projects/{project_id}/artifact", headers=auth)).content)) as zf:
        built = zf.read("task_board/tests/glue.py").decode()
    assert built == '"""Built by forgeflow-fake for glue."""\n\nTASK = \'glue\'\n'
