"""Coding agents that misbehave, run for real in the real sandbox: one that never stops (and
leaves children), one that reaches for the network, the worker's secrets, or files outside
its work tree, one that floods stdout, one over its cost cap; and the activity's heartbeat,
which ends a run when it raises."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from agents.coding.config import CodingAgentConfig
from agents.coding.runners import PRIVATE_PREFIX, run_coding_agent
from agents.coding.types import AgentRun
from engine.sandbox import SandboxConfig
from engine.scratch import sweep
from tests.agents.coding.fakes import install, needs_bwrap, processes_with

pytestmark = needs_bwrap

SLEEPER = """\
import subprocess
marker = ARGV[0]
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", marker], start_new_session=True)
subprocess.Popen(["sh", "-c", "sleep 600; :", marker])
pathlib.Path("started").write_text("")
import time
time.sleep(600)
"""


def agent(tmp_path: Path, body: str, **config: object) -> tuple[CodingAgentConfig, Path]:
    """A command agent running ``body``, and its work tree."""
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    program = install(tmp_path / "bin", "agent", body)
    argv = config.pop("executable", [str(program)])
    return CodingAgentConfig.model_validate({"kind": "command", "executable": argv, **config}), workdir


def run(config: CodingAgentConfig, workdir: Path, **kwargs: object) -> AgentRun:
    return run_coding_agent(config=config, prompt="do it", workdir=workdir, sandbox=SandboxConfig(), **kwargs)  # type: ignore[arg-type]


def wait_until(predicate: object, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_an_agent_that_never_stops_is_killed_at_its_timeout_with_all_it_started(tmp_path):
    marker = f"ff-agent-sleeper-{uuid.uuid4().hex}"
    config, workdir = agent(tmp_path, SLEEPER, timeout_seconds=2)
    config = config.model_copy(update={"executable": [*config.executable, marker]})
    started = time.monotonic()
    done = run(config, workdir)
    assert time.monotonic() - started < 10
    assert done.timed_out and not done.ok
    assert done.error == "timed out after 2 s: the agent and all it started were killed"
    assert processes_with(marker) == []  # its children too, new session or not


def test_an_agent_cannot_reach_the_network_unless_allowed(tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    probe = f"""\
    import socket, subprocess
    found = {{}}
    for host, p in (("127.0.0.1", {port}), ("1.1.1.1", 53)):
        try:
            socket.create_connection((host, p), timeout=3).close()
            found[host] = "connected"
        except OSError as exc:
            found[host] = type(exc).__name__
    curl = subprocess.run(["curl", "-sS", "-m", "3", "http://1.1.1.1/"], capture_output=True, text=True)
    found["curl"] = curl.returncode
    print(json.dumps({{"summary": json.dumps(found)}}))
    """
    try:
        config, workdir = agent(tmp_path, probe)
        closed = json.loads(run(config, workdir).summary)
        opened = json.loads(run(config.model_copy(update={"network": True}), workdir).summary)
    finally:
        server.close()
    assert closed["127.0.0.1"] != "connected" and closed["1.1.1.1"] != "connected", closed
    assert closed["curl"] != 0, closed
    assert opened["127.0.0.1"] == "connected", "with the network allowed, the same probe connects"


def test_an_agent_gets_only_the_variables_named_for_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FF_TEST_WORKER_SECRET", "sk-worker-never")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-for-the-agent")
    body = "print(json.dumps({'summary': json.dumps(dict(os.environ))}))\n"
    config, workdir = agent(tmp_path, body, pass_env=["ANTHROPIC_API_KEY", "FF_TEST_UNSET_VARIABLE"])
    env = json.loads(run(config, workdir).summary)
    assert env["ANTHROPIC_API_KEY"] == "sk-ant-for-the-agent"
    assert "FF_TEST_WORKER_SECRET" not in env and "FF_TEST_UNSET_VARIABLE" not in env
    assert "sk-worker-never" not in json.dumps(env)
    assert set(env) <= {"PATH", "HOME", "LANG", "LC_ALL", "PYTHONDONTWRITEBYTECODE", "PWD", "ANTHROPIC_API_KEY"}


def test_an_agent_writes_nothing_outside_its_work_tree(tmp_path):
    name = f"ff-escape-{uuid.uuid4().hex}"
    targets = [
        tmp_path / name,  # beside its work tree
        Path("/work") / name,
        Path.cwd() / name,  # the checkout the worker runs from
        Path.home() / name,  # the worker's HOME
        Path("/tmp") / name,  # its own /tmp: private
    ]
    body = f"""\
    found = {{}}
    for target in {[str(t) for t in targets]!r} + [os.path.join(os.environ["HOME"], {name!r})]:
        try:
            with open(target, "a") as fh:
                fh.write("escaped")
            found[target] = "written"
        except OSError as exc:
            found[target] = type(exc).__name__
    pathlib.Path("inside.txt").write_text("mine")
    print(json.dumps({{"summary": json.dumps(found), "risks": [str(os.getuid())]}}))
    """
    config, workdir = agent(tmp_path, body)
    try:
        done = run(config, workdir)
        escaped = [target for target in targets if target.exists()]
    finally:
        for target in targets:
            target.unlink(missing_ok=True)
    assert done.ok, done
    found = json.loads(done.summary)
    assert (workdir / "inside.txt").read_text() == "mine"
    assert escaped == [], f"written outside the sandbox: {found}"
    assert found[str(Path("/tmp") / name)] == "written"  # its private /tmp, gone with it
    if os.geteuid() == 0:
        assert done.risks == ["65534"]  # never root inside


def test_an_agent_flooding_stdout_is_read_from_its_last_line_in_bounded_memory(tmp_path):
    """50 MiB of log, then its report: a driver process runs it, so that its peak memory
    is this run's alone."""
    body = """\
    chunk = ("x" * 1023 + "\\n").encode()
    for _ in range(50 * 1024):
        sys.stdout.buffer.write(chunk)
    print(json.dumps({"usage": {"input_tokens": 7, "output_tokens": 3}, "summary": "flooded"}))
    """
    config, workdir = agent(tmp_path, body, timeout_seconds=120)
    driver = textwrap.dedent(f"""\
        import json, resource, sys
        from pathlib import Path
        from agents.coding.config import CodingAgentConfig
        from agents.coding.runners import run_coding_agent
        from engine.sandbox import SandboxConfig
        config = CodingAgentConfig.model_validate_json({config.model_dump_json()!r})
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        done = run_coding_agent(config=config, prompt="go", workdir=Path({str(workdir)!r}), sandbox=SandboxConfig())
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"run": done.model_dump(), "grew_kib": after - before}}))
    """)
    finished = subprocess.run(
        [sys.executable, "-c", driver], capture_output=True, text=True, timeout=180, cwd=Path(__file__).parents[3]
    )
    assert finished.returncode == 0, finished.stderr
    result = json.loads(finished.stdout.splitlines()[-1])
    done = AgentRun.model_validate(result["run"])
    assert done.ok, done
    assert (done.summary, done.input_tokens, done.output_tokens) == ("flooded", 7, 3)
    assert result["grew_kib"] < 40 * 1024, result["grew_kib"]  # never the 50 MiB in memory
    assert len(done.output_tail) < 10_000


def test_an_agent_spending_past_the_cap_fails_naming_it(tmp_path):
    body = "print(json.dumps({'usage': {'input_tokens': 10, 'output_tokens': 1}, 'cost_usd': 1.2345}))\n"
    config, workdir = agent(tmp_path, body, max_cost_usd_per_task=1)
    done = run(config, workdir)
    assert not done.ok and done.error == "spent $1.2345, over the task's cap $1.00"
    assert done.cost_usd == 1.2345
    silent, workdir = agent(tmp_path, "print('no report')\n", max_cost_usd_per_task=1)
    done = run(silent, workdir)
    assert not done.ok and done.error == "the command agent reported no cost: the task's cap $1.00 cannot be kept"


def test_on_tick_runs_while_the_agent_works(tmp_path):
    config, workdir = agent(tmp_path, "import time\ntime.sleep(2.5)\n")
    ticks: list[float] = []
    done = run(config, workdir, on_tick=lambda: ticks.append(time.monotonic()))
    assert done.ok, done
    assert len(ticks) >= 2, ticks


class Cancelled(Exception):
    pass


def test_raising_from_on_tick_kills_the_agent_promptly_and_propagates(tmp_path):
    marker = f"ff-agent-cancelled-{uuid.uuid4().hex}"
    config, workdir = agent(tmp_path, SLEEPER, timeout_seconds=600)
    config = config.model_copy(update={"executable": [*config.executable, marker]})

    def tick() -> None:
        if (workdir / "started").exists():
            assert len(processes_with(marker)) >= 2, "its children are running"
            raise Cancelled

    started = time.monotonic()
    with pytest.raises(Cancelled):
        run(config, workdir, on_tick=tick)
    assert time.monotonic() - started < 8
    assert processes_with(marker) == []
    assert workdir.stat().st_uid == os.getuid()  # the work tree is the worker's again


def test_an_agent_dies_with_its_worker(tmp_path):
    marker = f"ff-agent-orphan-{uuid.uuid4().hex}"
    config, workdir = agent(tmp_path, SLEEPER, timeout_seconds=600)
    config = config.model_copy(update={"executable": [*config.executable, marker]})
    driver = textwrap.dedent(f"""\
        from pathlib import Path
        from agents.coding.config import CodingAgentConfig
        from agents.coding.runners import run_coding_agent
        from engine.sandbox import SandboxConfig
        config = CodingAgentConfig.model_validate_json({config.model_dump_json()!r})
        run_coding_agent(config=config, prompt="go", workdir=Path({str(workdir)!r}), sandbox=SandboxConfig())
    """)
    scratch = tmp_path / "scratch"  # where the killed worker's own temporary files stay behind
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    worker = subprocess.Popen([sys.executable, "-c", driver], cwd=Path(__file__).parents[3], env=env)
    try:
        assert wait_until(lambda: (workdir / "started").exists(), 20), "the agent and its children started"
    finally:
        worker.kill()  # SIGKILL: no clean-up of its own runs
        worker.wait()
    assert wait_until(lambda: processes_with(marker) == [], 10), processes_with(marker)
    # Its agent's private directory (the prompt) stays behind, for the next sweep to take.
    left = list(scratch.glob(f"{PRIVATE_PREFIX}*"))
    assert len(left) == 1 and (left[0] / "in" / "prompt.md").is_file(), left
    assert sweep(scratch, PRIVATE_PREFIX) == left and not left[0].exists()
