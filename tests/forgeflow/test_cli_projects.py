"""`forgeflow projects ...` and `forgeflow generate`, run as real processes against the real API."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.api.test_lifecycle import wait_for_status

# Poll fast: the defaults (2 s, backing off to 15 s) are for people.
FAST = {"FORGEFLOW_POLL_START": "0.05", "FORGEFLOW_POLL_MAX": "0.2"}
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("FORGEFLOW_", "DJASS_"))}
WIDGET = {"project_name": "Gadget Kit", "template": "widget-lib"}


async def cli(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "forgeflow", *args],
        env={**CLEAN_ENV, **FAST, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture
def key(make_key):
    return make_key().key


@pytest.fixture
def auth(key):
    return {"X-API-Key": key}


@pytest.fixture
def env(api, key):
    return {"FORGEFLOW_API_URL": api.url, "FORGEFLOW_API_KEY": key}


async def create(http, auth, **extra) -> int:
    created = await http.post("/projects", json={**WIDGET, **extra}, headers=auth)
    assert created.status_code == 201, created.text
    return created.json()["project"]["id"]


async def test_generate_end_to_end_then_list_show_status_download(api, http, worker, env, auth, tmp_path):
    out = tmp_path / "widget.zip"
    generated = await cli(
        "generate",
        "--name",
        "Widget Demo",
        "--template",
        "widget-lib",
        "--set",
        "license=Apache-2.0",
        "--set",
        "use_cli=n",
        "-o",
        str(out),
        env=env,
    )
    assert generated.returncode == 0, generated.stderr
    assert generated.stdout.strip() == str(out.resolve())
    project = (await http.get("/projects", params={"limit": 1}, headers=auth)).json()["projects"][0]
    pid = str(project["id"])
    assert (project["name"], project["status"], project["template"]) == ("Widget Demo", "ready", "widget-lib")
    assert project["input_payload"]["license"] == "Apache-2.0"
    artifact = await http.get(f"/projects/{pid}/artifact", headers=auth)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == artifact.headers["x-content-sha256"]
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None and any(n.endswith("README.md") for n in zf.namelist())

    v1_form = {**env, "FORGEFLOW_API_URL": f"{api.url}/api/v1/"}
    listed, listed_json, shown, shown_json, status, status_json, fetched, refused = await asyncio.gather(
        cli("projects", "list", env=env),
        cli("projects", "list", "--status", "ready", "--limit", "5", "--json", env=env),
        cli("projects", "show", pid, env=env),
        cli("projects", "show", pid, "--json", env=v1_form),
        cli("projects", "status", pid, env=env),
        cli("projects", "status", pid, "--json", env=env),
        cli("projects", "download", pid, env=env, cwd=tmp_path),  # the server's file name, here
        cli("projects", "download", pid, "-o", str(out), env=env),  # refuses to overwrite
    )
    for result in (listed, listed_json, shown, shown_json, status, status_json, fetched):
        assert result.returncode == 0, result.stderr
    assert "Widget Demo" in listed.stdout and "widget_demo" in listed.stdout and "1-1 of 1" in listed.stdout
    assert (
        json.loads(listed_json.stdout)
        == (await http.get("/projects", params={"status": "ready", "limit": 5}, headers=auth)).json()
    )
    assert json.loads(shown_json.stdout) == (await http.get(f"/projects/{pid}", headers=auth)).json()
    assert "input_payload" in shown.stdout and "Apache-2.0" in shown.stdout and "ready" in shown.stdout
    assert json.loads(status_json.stdout) == (await http.get(f"/projects/{pid}/status", headers=auth)).json()
    assert "artifact_ready" in status.stdout and "yes" in status.stdout
    assert fetched.stdout.strip() == str(tmp_path / "widget_demo.zip")
    assert (tmp_path / "widget_demo.zip").read_bytes() == out.read_bytes()
    assert refused.returncode == 1 and "--force" in refused.stderr

    out.write_bytes(b"stale")
    forced = await cli("projects", "download", pid, "-o", str(out), "--force", "--json", env=env)
    assert forced.returncode == 0, forced.stderr
    saved = json.loads(forced.stdout)
    assert saved["sha256"] == artifact.headers["x-content-sha256"] and saved["size"] == len(artifact.content)
    assert out.read_bytes() == artifact.content
    assert not list(tmp_path.glob(".*.part"))


async def test_gated_generate_stops_at_the_gate_then_approve_and_wait(http, worker, env, auth, tmp_path):
    gated = await cli(
        "generate", "--name", "Gated Kit", "--template", "widget-lib", "--require-approval", "--json", env=env
    )
    assert gated.returncode == 5, gated.stderr
    body = json.loads(gated.stdout)
    assert body["artifact"] is None and body["project"]["status"] == "awaiting_approval"
    pid = str(body["project"]["id"])
    assert f"forgeflow projects approve {pid}" in gated.stderr

    at_gate, through = await asyncio.gather(
        cli("projects", "wait", pid, env=env),
        cli("projects", "wait", pid, "--through-gates", "--timeout", "0.5", env=env),
    )
    assert at_gate.returncode == 5 and "awaiting_approval" in at_gate.stderr
    assert through.returncode == 5 and "gave up waiting" in through.stderr

    approved = await cli("projects", "approve", pid, "--notes", "ship it", env=env)
    assert approved.returncode == 0, approved.stderr
    assert f"project {pid}: approve ok" in approved.stdout
    done, again, zipped = await asyncio.gather(
        cli("projects", "wait", pid, "--json", env=env),
        cli("projects", "approve", pid, env=env),
        cli("projects", "wait", pid, env=env),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "ready"
    assert again.returncode == 1 and "invalid_state (HTTP 409)" in again.stderr
    assert zipped.returncode == 0 and zipped.stdout.strip() == f"project {pid}: ready"
    spec = (await http.get(f"/projects/{pid}/spec/versions", headers=auth)).json()["versions"][0]
    assert spec["decision_notes"] == "ship it"


async def test_answer_questions_from_pairs_and_a_file(http, worker, env, auth, tmp_path):
    pid = str(await create(http, auth, project_name="Asked Kit", ask_questions=True))
    waited = await cli("projects", "wait", pid, env=env)
    assert waited.returncode == 5 and f"forgeflow projects answer {pid}" in waited.stderr

    table, listed, wrong = await asyncio.gather(
        cli("projects", "questions", pid, env=env),
        cli("projects", "questions", pid, "--json", env=env),
        cli("projects", "answer", pid, "license=GPL", env=env),
    )
    assert table.returncode == 0 and "license" in table.stdout and "single_choice" in table.stdout
    assert {q["id"] for q in json.loads(listed.stdout)["questions"]} == {"license", "use_cli", "python_version"}
    assert wrong.returncode == 1 and "invalid_payload (HTTP 400)" in wrong.stderr and "license" in wrong.stderr

    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"license": "MIT", "python_version": "3.12"}))
    answered = await cli("projects", "answer", pid, "--file", str(answers), "use_cli=n", "--json", env=env)
    assert answered.returncode == 0, answered.stderr
    assert json.loads(answered.stdout)["id"] == int(pid)
    done = await cli("projects", "wait", pid, env=env)
    assert done.returncode == 0, done.stderr
    run = (await http.get(f"/projects/{pid}/runs/1", headers=auth)).json()
    assert run["spec"]["answers"]["license"] == "MIT" and run["spec"]["answers"]["use_cli"] == "n"


async def test_pause_resume_cancel_retry_reject(http, worker, env, auth):
    pid = str(await create(http, auth, project_name="Steered Kit", require_approval=True))
    assert (await cli("projects", "wait", pid, env=env)).returncode == 5
    for action in ("pause", "resume"):
        result = await cli("projects", action, pid, env=env)
        assert result.returncode == 0 and f"{action} ok" in result.stdout, result.stderr
    cancelled = await cli("projects", "cancel", pid, "--json", env=env)
    # The answer is the state the cancel led to: the run had stored it by then.
    assert cancelled.returncode == 0 and json.loads(cancelled.stdout)["status"] == "cancelled"
    waited = await cli("projects", "wait", pid, env=env)
    assert waited.returncode == 1 and "cancelled: Cancelled." in waited.stderr

    retried = await cli("projects", "retry", pid, env=env)
    assert retried.returncode == 0, retried.stderr
    no_notes, at_gate = await asyncio.gather(
        cli("projects", "reject", pid, env=env),  # --notes is required
        cli("projects", "wait", pid, env=env),
    )
    assert no_notes.returncode == 2 and "--notes" in no_notes.stderr
    assert at_gate.returncode == 5 and "awaiting_approval" in at_gate.stderr
    assert (await cli("projects", "reject", pid, "--notes", "Not this stack", env=env)).returncode == 0
    failed = await cli("projects", "wait", pid, "--json", env=env)
    assert failed.returncode == 1 and json.loads(failed.stdout)["error_message"] == "Not this stack"
    runs = (await http.get(f"/projects/{pid}/runs", headers=auth)).json()["runs"]
    assert [(r["status"], r["trigger"]) for r in runs] == [("cancelled", "create"), ("failed", "retry")]


class CuttingProxy:
    """A TCP relay to the API that cuts its first connection a few bytes after the first
    complete event frame, as a dropped connection would."""

    def __init__(self, port: int) -> None:
        self.port, self.requests = port, []

    async def __aenter__(self) -> CuttingProxy:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cut = not self.requests
        sent: list[bytes] = []
        self.requests.append(sent)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, log: list[bytes], cut: bool) -> None:
            seen = b""
            while data := await src.read(4096):
                log.append(data)
                seen += data
                first = seen.find(b"\nid: ") if cut else -1
                end = seen.find(b"\n\n", first) if first >= 0 else -1
                if end >= 0:
                    dst.write(seen[len(seen) - len(data) : end + 7])
                    await dst.drain()
                    return
                dst.write(data)
                await dst.drain()

        tasks = [
            asyncio.create_task(pump(reader, up_writer, sent, False)),
            asyncio.create_task(pump(up_reader, writer, [], cut)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for w in (writer, up_writer):
            w.close()


async def test_events_and_follow_resume_after_a_dropped_connection(api, http, worker, env, auth):
    pid = str(await create(http, auth, require_approval=True))
    await wait_for_status(http, pid, auth, "awaiting_approval")
    port = int(api.url.rsplit(":", 1)[1])
    async with CuttingProxy(port) as proxy:
        followed = asyncio.create_task(cli("projects", "events", pid, "--follow", "--json", env=env))
        resumed = asyncio.create_task(
            cli("projects", "events", pid, "--follow", "--json", env={**env, "FORGEFLOW_API_URL": proxy.url})
        )
        deadline = asyncio.get_running_loop().time() + 30
        while len(proxy.requests) < 2:  # cut, and reconnected
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        approved = await http.post(f"/projects/{pid}/approve", json={}, headers=auth)
        assert approved.status_code == 200
        direct, through_proxy = await followed, await resumed  # both end by themselves
    listed = (await http.get(f"/projects/{pid}/events", params={"limit": 1000}, headers=auth)).json()["events"]
    for result in (direct, through_proxy):
        assert result.returncode == 0, result.stderr
        streamed = [json.loads(line) for line in result.stdout.splitlines()]
        assert streamed == listed  # every event once, in order, as the API has it
    assert listed[-1]["type"] == "status_changed" and listed[-1]["payload"]["status"] == "ready"
    second_request = b"".join(proxy.requests[1]).decode().lower()
    assert "last-event-id: 1" in second_request and "/events/stream" in second_request

    lines, page = await asyncio.gather(
        cli("projects", "events", pid, env=env), cli("projects", "events", pid, "--after", "3", "--json", env=env)
    )
    assert lines.returncode == 0 and len(lines.stdout.splitlines()) == len(listed)
    assert "project_ready" in lines.stdout
    assert [json.loads(line)["id"] for line in page.stdout.splitlines()] == [e["id"] for e in listed[3:]]


async def test_exit_codes_for_what_a_user_can_get_wrong(api, env, make_key):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, never listening: refused
        read_only = make_key(scopes=["projects:read"]).key
        results = await asyncio.gather(
            cli("projects", "list", env={**env, "FORGEFLOW_API_KEY": "ff_not_a_key"}),
            cli("projects", "list", env={"FORGEFLOW_API_URL": env["FORGEFLOW_API_URL"]}),
            cli("projects", "show", "999999", env=env),
            cli("generate", "--name", "Nope", env={**env, "FORGEFLOW_API_KEY": read_only}),
            cli("projects", "status", "1", env={**env, "FORGEFLOW_API_URL": closed}),
            cli("projects", "answer", "1", "no-equals-sign", env=env),
            cli("generate", "--name", "Nope", "--set", "=value", env=env),
            cli("generate", "--name", "Nope", "--template", "no-such-template", env=env),
        )
    codes = [r.returncode for r in results]
    assert codes == [3, 3, 3, 3, 4, 2, 2, 1], [(r.returncode, r.stderr) for r in results]
    bad_key, no_key, unknown, scoped, unreachable, *_, template = results
    assert "auth_required (HTTP 401)" in bad_key.stderr
    assert "FORGEFLOW_API_KEY" in no_key.stderr
    assert "project_not_found (HTTP 404)" in unknown.stderr
    assert "insufficient_scope (HTTP 403)" in scoped.stderr and "projects:create" in scoped.stderr
    assert "cannot reach the API" in unreachable.stderr and "Connection refused" in unreachable.stderr
    assert "'no-equals-sign' is not key=value" in results[5].stderr and "=value" in results[6].stderr
    assert "unknown_template (HTTP 400)" in template.stderr and "widget-lib" in template.stderr
    assert all(not r.stdout for r in results)
