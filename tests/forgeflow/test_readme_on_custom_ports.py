"""The README's commands as written, against a real `forgeflow dev` on non-default ports,
from a shell where the virtualenv is activated and no FORGEFLOW_ variable is set: `keys
create` finds the running stack's database, and every `temporal-cli` line of "Operating
forgeflow" reaches the stack's Temporal and does what it says."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from engine.templates import BUILTIN_TEMPLATES_DIR
from tests.forgeflow.dev_helpers import DevStack, newcomer_env

README = Path(__file__).resolve().parents[2] / "README.md"
GATED = {"require_approval": True}


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    home = tmp_path_factory.mktemp("dev")
    stack = DevStack(home, newcomer_env(home))
    try:
        stack.wait_up()
        yield stack
    finally:
        stack.stop()


def shell(line: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", line], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def readme_keys_create() -> str:
    found = re.search(r"More keys: `(forgeflow keys create [^`]+)`", README.read_text(encoding="utf-8"))
    assert found, "the README's `forgeflow keys create` line"
    return re.sub(r"\s*\[[^\]]*\]", "", found.group(1))  # the optional parts left out


def readme_temporal_lines() -> list[str]:
    text = README.read_text(encoding="utf-8")
    block = text[text.index("## Operating forgeflow") :].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_keys_create_as_the_readme_shows_makes_a_key_the_running_api_accepts(dev, tmp_path):
    line = readme_keys_create()
    assert line.startswith("forgeflow keys create --owner")
    elsewhere = tmp_path / "elsewhere"  # not where dev was started
    elsewhere.mkdir()
    done = shell(line, dev.env, elsewhere)
    assert done.returncode == 0, done.stderr
    assert f"using the running dev stack's data in {dev.data_dir}" in done.stderr
    key = done.stdout.strip().splitlines()[-1]
    assert key.startswith("ff_")
    created = httpx.post(f"{dev.base}/projects", json={"project_name": "Keyed"}, headers={"X-API-Key": key})
    assert created.status_code == 201, created.text
    assert not (elsewhere / ".forgeflow").exists()

    # Where no stack is recorded, it is what it was before: a database of its own, here,
    # and a key the running API does not know.
    unrecorded = {**dev.env, "XDG_RUNTIME_DIR": str(tmp_path / "empty")}
    done = shell(line.replace("--owner acme", "--owner lone"), unrecorded, elsewhere)
    assert done.returncode == 0, done.stderr
    lone = done.stdout.strip().splitlines()[-1]
    assert httpx.get(f"{dev.base}/projects", headers={"X-API-Key": lone}).status_code == 401
    assert (elsewhere / ".forgeflow" / "forgeflow.db").exists()


def test_readme_temporal_lines_work_as_written_on_custom_ports(dev, tmp_path):
    lines = readme_temporal_lines()
    assert len(lines) >= 10 and all(line.startswith("forgeflow temporal-cli workflow ") for line in lines), lines
    with httpx.Client(base_url=dev.base, headers={"X-API-Key": dev.key}, timeout=30) as http:
        names = ["update-approved", "signal-approved", "rejected", "regenerated", "paused"]
        ids = {name: create(http, {"project_name": name, **GATED}) for name in names}
        ids["answered"] = create(http, {**all_fields_but("use_stripe"), "ask_questions": True})
        for name in names:
            wait(http, ids[name], lambda p: p["status"] == "awaiting_approval")
        wait(http, ids["answered"], lambda p: p["status"] == "awaiting_answers")
        # Which project each README line acts on; a line the test does not know fails it.
        target = {
            ("update", "approve"): "update-approved",
            ("signal", "approve"): "signal-approved",
            ("signal", "reject"): "rejected",
            ("signal", "regenerate"): "regenerated",
            ("signal", "answers"): "answered",
            ("signal", "pause"): "paused",
            ("signal", "resume"): "paused",
            ("cancel", None): "paused",
            ("query", None): "regenerated",
        }
        gated = {f"project-{ids[name]}" for name in names}
        for line in lines:
            words = shlex.split(line, comments=True)
            verb = words[3]  # forgeflow temporal-cli workflow VERB …
            action = words[words.index("--name") + 1] if "--name" in words else None
            if verb == "list":
                # Visibility lags the workflows a little: the same line, until all show.
                deadline = time.monotonic() + 60
                while not gated <= set(re.findall(r"project-\d+", (done := shell(line, dev.env, tmp_path)).stdout)):
                    assert done.returncode == 0 and time.monotonic() < deadline, (line, done.stdout, done.stderr)
                    time.sleep(0.5)
                continue
            assert (verb, action) in target, f"a README line the test does not know: {line}"
            project_id = ids[target[verb, action]]
            done = shell(line.replace("project-42", f"project-{project_id}"), dev.env, tmp_path)
            assert done.returncode == 0, (line, done.stdout, done.stderr)
            if verb == "query":
                assert "awaiting_approval" in done.stdout, done.stdout
            if action == "regenerate":
                wait(http, project_id, lambda p, i=project_id: spec_version(http, i) == 2)

        wait(http, ids["update-approved"], lambda p: p["status"] == "ready")
        wait(http, ids["signal-approved"], lambda p: p["status"] == "ready")
        rejected = wait(http, ids["rejected"], lambda p: p["status"] == "failed")
        assert rejected["error_message"] == "wrong stack"
        wait(http, ids["answered"], lambda p: p["status"] == "ready")
        wait(http, ids["paused"], lambda p: p["status"] == "cancelled")
        assert http.get(f"/projects/{ids['regenerated']}").json()["status"] == "awaiting_approval"


def create(http: httpx.Client, body: dict) -> int:
    created = http.post("/projects", json=body)
    assert created.status_code == 201, created.text
    return created.json()["project"]["id"]


def all_fields_but(name: str) -> dict:
    """Every variable of the built-in template but one, so that one is the only question."""
    defaults = json.loads((BUILTIN_TEMPLATES_DIR / "djass-saas" / "cookiecutter.json").read_text())
    fields = {k: v for k, v in defaults.items() if not k.startswith("_") and k != name}
    return {**fields, "project_name": "Answered", "project_slug": "answered"}


def spec_version(http: httpx.Client, project_id: int) -> int | None:
    spec = http.get(f"/projects/{project_id}/spec")
    return spec.json()["version"] if spec.status_code == 200 else None


def wait(http: httpx.Client, project_id: int, done, seconds: float = 180) -> dict:
    deadline = time.monotonic() + seconds
    while not done(project := http.get(f"/projects/{project_id}").json()):
        assert time.monotonic() < deadline, project
        time.sleep(0.2)
    return project
