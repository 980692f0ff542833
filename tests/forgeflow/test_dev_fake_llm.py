"""`forgeflow dev --fake-llm`: forgeflow-fake as one more supervised child, the provider of
the worker and the API, said to be a fake; agent mode is served offline."""

from __future__ import annotations

import re

import httpx

from forgeflow.ports import free_port
from tests.forgeflow.dev_helpers import DevStack, children_of, listening, newcomer_env, pid_gone, wait_until


def test_the_dev_stack_serves_agent_mode_with_a_fake_model(tmp_path):
    fake_port = free_port()
    stack = DevStack(tmp_path, newcomer_env(tmp_path), args=("--fake-llm-port", str(fake_port)))
    try:
        stack.wait_up()
        line = next(line for line in stack.lines if line.lstrip().startswith("Model"))
        assert f"forgeflow-fake at http://127.0.0.1:{fake_port}/v1" in line and "FAKE" in line, line
        fakes = [pid for pid, cmd in children_of(stack.proc.pid).items() if "agents.fake_llm" in cmd]
        assert len(fakes) == 1, children_of(stack.proc.pid)
        # The fake answers at its URL, and says it is one.
        chat = httpx.post(
            f"http://127.0.0.1:{fake_port}/v1/chat/completions",
            json={"model": "forgeflow-fake", "messages": [{"role": "user", "content": "hello"}]},
            timeout=10,
        )
        assert chat.status_code == 200 and chat.headers["x-forgeflow-fake"] == "true", chat.text
        assert chat.json()["model"] == "forgeflow-fake"
        # The API has a provider: an agent-mode create is taken, with the configured model.
        auth = {"X-API-Key": stack.key}
        body = {
            "project_name": "Gadget Kit",
            "prompt": "A tiny library of gadgets.",
            "agent": {"model": "forgeflow-fake", "budget": {"max_total_tokens": 50_000, "max_cost_usd": 1.0}},
            "require_approval": True,
        }
        created = httpx.post(f"{stack.base}/projects", json=body, headers=auth, timeout=30)
        assert created.status_code == 201, created.text
        project_id = created.json()["project"]["id"]
        usage = httpx.get(f"{stack.base}/projects/{project_id}/usage", headers=auth, timeout=10)
        budget = {**body["agent"]["budget"], "max_cost_usd_per_task": None}
        assert usage.status_code == 200 and usage.json()["budget"] == budget, usage.text
    finally:
        stack.stop()
    assert stack.proc.returncode == 0, stack.output[-3000:]
    assert not listening(fake_port)
    wait_until(lambda: all(pid_gone(pid) for pid in fakes), 10, "the fake model still runs")
    assert re.search(r"forgeflow-fake \(not a real model\)", stack.output)
