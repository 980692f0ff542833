"""What engine.sandbox.run gives coding agents and not hooks: stdout kept apart from stderr
(its last bytes, on disk), variables added to the clean environment, a file on stdin, and a
callback every second, whose exception ends the run; sandboxed, and unsandboxed for
trusted code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from engine import sandbox
from engine.sandbox import SandboxConfig
from tests.agents.coding.fakes import needs_bwrap, processes_with

pytestmark = needs_bwrap
CONFIGS = [pytest.param(SandboxConfig(), id="bwrap"), pytest.param(SandboxConfig(mode="off"), id="off")]


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


@pytest.mark.parametrize("config", CONFIGS)
def test_stdout_apart_from_stderr_with_env_and_stdin(tmp_path, config):
    (tmp_path / "in.txt").write_text("from the file")
    code = "import os, sys; print(sys.stdin.read(), os.environ['FF_EXTRA']); print('oops', file=sys.stderr)"
    outcome = sandbox.run(
        python(code),
        cwd=tmp_path,
        config=config,
        trusted=True,
        env={"FF_EXTRA": "added"},
        stdin=tmp_path / "in.txt",
        stdout=tmp_path / "out.txt",
    )
    assert outcome.ok and outcome.stdout_dropped == 0
    assert (tmp_path / "out.txt").read_text() == "from the file added\n"
    assert outcome.output == "oops\n"  # stderr alone


def test_without_the_new_arguments_output_is_interleaved_as_before(tmp_path):
    outcome = sandbox.run(
        python("import sys; print('a', flush=True); print('b', file=sys.stderr)"),
        cwd=tmp_path,
        config=SandboxConfig(),
        trusted=False,
    )
    assert outcome.ok and outcome.output == "a\nb\n" and outcome.stdout_dropped == 0


def test_stdout_past_its_limit_keeps_its_end(tmp_path):
    code = "import sys\nfor i in range(10000):\n    print(f'line {i:05d}')\nprint('THE END')"
    outcome = sandbox.run(
        python(code), cwd=tmp_path, config=SandboxConfig(), trusted=False, stdout=tmp_path / "out", stdout_limit=4096
    )
    kept = (tmp_path / "out").read_bytes()
    assert outcome.ok and 2048 <= len(kept) <= 4096
    assert kept.endswith(b"line 09999\nTHE END\n")
    assert outcome.stdout_dropped + len(kept) == 10000 * 11 + 8  # every byte kept or counted


@pytest.mark.parametrize("config", CONFIGS)
def test_on_tick_is_called_while_it_runs_and_its_exception_ends_it(tmp_path, config):
    ticks: list[float] = []
    outcome = sandbox.run(
        python("import time; time.sleep(2.2)"),
        cwd=tmp_path,
        config=config,
        trusted=True,
        on_tick=lambda: ticks.append(1),
    )
    assert outcome.ok and len(ticks) >= 2

    def cancel() -> None:
        raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        sandbox.run(python("import time; time.sleep(60)"), cwd=tmp_path, config=config, trusted=True, on_tick=cancel)
    assert time.monotonic() - started < 5


def test_a_timeout_still_holds_with_stdout_kept_apart(tmp_path):
    config = SandboxConfig(limits=sandbox.Limits(timeout_seconds=1))
    code = "import time\nwhile True:\n    print('busy', flush=True)\n    time.sleep(0.01)"
    started = time.monotonic()
    outcome = sandbox.run(python(code), cwd=tmp_path, config=config, trusted=False, stdout=tmp_path / "out")
    assert outcome.timed_out and time.monotonic() - started < 5
    assert (tmp_path / "out").read_text().startswith("busy\n")


def test_a_program_that_leaves_stdout_open_behind_it_does_not_hold_the_run(tmp_path: Path):
    """Unsandboxed (trusted code), a child it left running still holds the pipe: the run
    ends a moment after the program, not at the timeout."""
    marker = f"ff-lingering-{uuid.uuid4().hex}"
    code = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(9)', {marker!r}])"
    code += "; print('bye')"
    started = time.monotonic()
    try:
        outcome = sandbox.run(
            python(code), cwd=tmp_path, config=SandboxConfig(mode="off"), trusted=True, stdout=tmp_path / "o"
        )
    finally:
        for pid in processes_with(marker):
            os.kill(pid, signal.SIGKILL)
    assert outcome.ok and time.monotonic() - started < 5
    assert (tmp_path / "o").read_text() == "bye\n"


def test_a_sandbox_whose_worker_is_gone_still_ends_at_its_own_clock(tmp_path, monkeypatch):
    """bwrap started with nobody left to enforce its timeout (a worker that died while bwrap
    was still setting --die-with-parent up): the sandbox's own watchdog ends it all."""
    monkeypatch.setattr(sandbox, "WATCHDOG_GRACE_SECONDS", 0)
    marker = f"ff-unwatched-{uuid.uuid4().hex}"
    code = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', {marker!r}], start_new_session=True); time.sleep(60)"  # noqa: E501
    config = SandboxConfig(limits=sandbox.Limits(timeout_seconds=1))
    argv = sandbox.bwrap_argv(config, cwd=tmp_path, writable=[tmp_path], read_only=[]) + python(code)
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=tmp_path, stdin=subprocess.DEVNULL)  # no timeout of the parent's
    try:
        proc.wait(timeout=10)
    finally:
        proc.kill()
    assert time.monotonic() - started < 8 and proc.returncode != 0
    deadline = time.monotonic() + 5
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(marker) == []
