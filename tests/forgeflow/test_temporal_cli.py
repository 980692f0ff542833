"""Operators and scripts with nothing but the real `temporal` CLI: signals, cancel,
search-attribute queries, and `forgeflow temporal setup` on an existing cluster."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from tests.api.test_lifecycle import wait_for_status
from tests.api.test_quickstart import poll_until_done
from tests.support import tool_path

GATED = {"project_name": "Scripted", "template": "widget-lib", "require_approval": True}


def temporal(address: str, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool_path("temporal"), *args, "--address", address, "--namespace", namespace],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def create(http, auth, **extra) -> int:
    response = await http.post("/projects", json={**GATED, **extra}, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()["project"]["id"]


async def test_signals_from_the_cli_steer_runs(http, worker, make_key, temporal_address, namespace):
    auth = {"X-API-Key": make_key().key}
    approved, rejected, cancel_id = [await create(http, auth) for _ in range(3)]
    asked_id = await create(http, auth, ask_questions=True, require_approval=False)
    for project_id in (approved, rejected, cancel_id):
        await wait_for_status(http, project_id, auth, "awaiting_approval")
    await wait_for_status(http, asked_id, auth, "awaiting_answers")

    # A signal in the wrong phase is logged and ignored; the run carries on.
    early = temporal(
        temporal_address,
        namespace,
        "workflow",
        "signal",
        "--workflow-id",
        f"project-{asked_id}",
        "--name",
        "approve",
        "--input",
        "{}",
    )
    assert early.returncode == 0, early.stderr
    # The search attribute finds exactly the runs waiting for approval (visibility lags a little).
    waiting = {f"project-{i}" for i in (approved, rejected, cancel_id)}
    for _ in range(100):
        listing = temporal(
            temporal_address,
            namespace,
            "workflow",
            "list",
            "--query",
            'ForgeflowStatus="awaiting_approval"',
            "--output",
            "json",
        )
        assert listing.returncode == 0, listing.stderr
        found = {w["workflowId"] for w in _workflows(listing.stdout)}
        if waiting <= found:
            break
        await asyncio.sleep(0.1)
    assert waiting <= found and f"project-{asked_id}" not in found

    answers = {"answers": {"license": "MIT", "use_cli": "y", "python_version": "3.11"}}
    for project_id, name, payload in [
        (approved, "approve", {}),
        (rejected, "reject", {"notes": "wrong stack"}),
        (asked_id, "answers", answers),
    ]:
        done = temporal(
            temporal_address,
            namespace,
            "workflow",
            "signal",
            "--workflow-id",
            f"project-{project_id}",
            "--name",
            name,
            "--input",
            json.dumps(payload),
        )
        assert done.returncode == 0, done.stderr
    done = temporal(temporal_address, namespace, "workflow", "cancel", "--workflow-id", f"project-{cancel_id}")
    assert done.returncode == 0, done.stderr

    assert (await poll_until_done(http, approved, auth))["status"] == "ready"
    failed = await poll_until_done(http, rejected, auth)
    assert (failed["status"], failed["error_message"]) == ("failed", "wrong stack")
    assert (await poll_until_done(http, asked_id, auth))["status"] == "ready"
    assert (await poll_until_done(http, cancel_id, auth))["status"] == "cancelled"


def _workflows(output: str) -> list[dict]:
    text = output.strip()
    if not text:
        return []
    if text.startswith("["):
        return [_flatten(w) for w in json.loads(text)]
    return [_flatten(json.loads(line)) for line in text.splitlines() if line.strip()]


def _flatten(workflow: dict) -> dict:
    execution = workflow.get("execution", {})
    return {"workflowId": execution.get("workflowId") or workflow.get("workflowId")}


async def test_pause_and_resume_signals(http, worker, make_key, temporal_address, namespace):
    auth = {"X-API-Key": make_key().key}
    project_id = await create(http, auth)
    await wait_for_status(http, project_id, auth, "awaiting_approval")
    for name in ("pause", "approve"):
        signal = temporal(
            temporal_address,
            namespace,
            "workflow",
            "signal",
            "--workflow-id",
            f"project-{project_id}",
            "--name",
            name,
            "--input",
            "{}",
        )
        assert signal.returncode == 0, signal.stderr
    await asyncio.sleep(1.0)
    tasks = (await http.get(f"/projects/{project_id}/runs/1/tasks", headers=auth)).json()["tasks"]
    assert tasks and {t["status"] for t in tasks} == {"pending"}
    resume = temporal(
        temporal_address,
        namespace,
        "workflow",
        "signal",
        "--workflow-id",
        f"project-{project_id}",
        "--name",
        "resume",
        "--input",
        "{}",
    )
    assert resume.returncode == 0
    assert (await poll_until_done(http, project_id, auth))["status"] == "ready"


def test_setup_registers_search_attributes_idempotently(temporal_address, namespace, tmp_path):
    env = {
        **os.environ,
        "FORGEFLOW_TEMPORAL_ADDRESS": temporal_address,
        "FORGEFLOW_NAMESPACE": namespace,
        "FORGEFLOW_DATA_DIR": str(tmp_path),
    }
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "forgeflow", "temporal", "setup"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "already registered" in done.stdout or "registered:" in done.stdout
    listed = temporal(temporal_address, namespace, "operator", "search-attribute", "list", "--output", "json")
    for name in ("ForgeflowProjectId", "ForgeflowOwner", "ForgeflowStatus", "ForgeflowPhase", "ForgeflowTemplate"):
        assert name in listed.stdout
    unreachable = subprocess.run(
        [sys.executable, "-m", "forgeflow", "temporal", "setup"],
        env={**env, "FORGEFLOW_TEMPORAL_ADDRESS": "127.0.0.1:1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unreachable.returncode == 4 and "Traceback" not in unreachable.stderr
