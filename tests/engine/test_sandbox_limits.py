"""The sandbox's limits (memory, CPU, wall clock, file size, processes), its death with
its parent, its read-only system, and what happens where no sandbox can be made."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from engine import EngineError, sandbox
from engine.hooks import run_hook
from engine.sandbox import Limits, SandboxConfig, SandboxUnavailable
from tests.engine.test_sandbox import needs_bwrap, processes_with

pytestmark = needs_bwrap

SLEEPER = "import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', {marker!r}], start_new_session=True)\ntime.sleep(600)\n"  # noqa: E501


def hook(tmp_path: Path, code: str, config: SandboxConfig | None = None) -> Path:
    """Run ``code`` as a template's post-generation hook; returns the project dir."""
    template, project = tmp_path / "template", tmp_path / "project"
    (template / "hooks").mkdir(parents=True)
    project.mkdir()
    (template / "hooks" / "post_gen_project.py").write_text(textwrap.dedent(code))
    config = config or SandboxConfig()
    run_hook(template, "post_gen_project", project, {"cookiecutter": {}}, sandbox=config, trusted=True)
    return project


def limited(**limits: float) -> SandboxConfig:
    return SandboxConfig(limits=replace(Limits(), **limits))


def test_a_hook_allocating_2_gb_fails_cleanly(tmp_path):
    with pytest.raises(EngineError, match="MemoryError") as failed:
        hook(tmp_path, "data = bytearray(2 * 1024**3)\n")  # the default limits: 1 GiB
    assert "hook post_gen_project.py failed" in str(failed.value)


def test_a_hook_busy_past_its_cpu_time_is_stopped(tmp_path):
    with pytest.raises(EngineError, match=r"SIGXCPU: CPU time limit"):
        hook(tmp_path, "while True:\n    pass\n", limited(cpu_seconds=1))


def test_a_hook_sleeping_forever_is_killed_at_its_timeout_with_all_it_started(tmp_path):
    marker = f"ff-sleeper-{uuid.uuid4().hex}"
    started = time.monotonic()
    with pytest.raises(EngineError, match=r"timed out after 1 s: the sandbox was killed"):
        hook(tmp_path, SLEEPER.format(marker=marker), limited(timeout_seconds=1))
    assert time.monotonic() - started < 5
    assert processes_with(marker) == []  # gone when run_hook returns, not some time later


def test_a_hook_cannot_write_a_file_past_the_size_limit(tmp_path):
    with pytest.raises(EngineError, match="File too large"):
        hook(tmp_path, "open('big', 'wb').write(bytes(2 * 1024 * 1024))\n", limited(file_bytes=1024 * 1024))


def test_a_hook_cannot_start_more_processes_than_its_limit(tmp_path):
    """As root too: the program runs as an unprivileged uid, which the kernel holds to it."""
    code = """\
        import os, time
        started = 0
        try:
            for _ in range(64):
                if os.fork() == 0:
                    time.sleep(2)
                    os._exit(0)
                started += 1
        except OSError:
            pass
        open("started", "w").write(str(started))
        """
    project = hook(tmp_path, code, limited(processes=16))
    assert int((project / "started").read_text()) < 16


def test_the_sandbox_dies_with_its_parent(tmp_path):
    """The worker killed outright (SIGKILL: no cleanup of its own) takes the sandbox with it."""
    marker = f"ff-sleeper-{uuid.uuid4().hex}"
    script = tmp_path / "hook.py"
    script.write_text(SLEEPER.format(marker=marker))
    parent = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from engine.sandbox import *; "
         "run([sys.executable, sys.argv[1]], cwd=Path(sys.argv[2]), config=SandboxConfig(), trusted=False, "
         "read_only=[Path(sys.argv[2])])", str(script), str(tmp_path)],
        cwd=Path(__file__).parents[2],
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not processes_with(marker):
        assert time.monotonic() < deadline and parent.poll() is None, "the sleeper never started"
        time.sleep(0.05)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    while processes_with(marker):
        assert time.monotonic() < deadline, "the sandbox outlived its parent"
        time.sleep(0.05)


def test_a_hook_cannot_make_the_read_only_system_writable(tmp_path):
    """Root in a sandbox that kept its capabilities could remount a read-only bind mount
    read-write and write to the host through it: no capabilities, no remount."""
    tools = tmp_path / "tools"
    tools.mkdir()
    targets = [Path(f"/usr/ff-escaped-{uuid.uuid4().hex}"), tools / "escaped"]
    code = f"""\
        import subprocess
        for target in ("/usr", {str(tools)!r}):
            subprocess.run(["mount", "-o", "remount,bind,rw", target], check=False)
        for path in {[str(t) for t in targets]!r}:
            try:
                open(path, "w").write("out")
            except OSError as exc:
                print(path, exc)
            else:
                raise SystemExit(f"wrote {{path}}")
        """
    try:
        hook(tmp_path, code, SandboxConfig(read_only=(tools,)))
    finally:
        escaped = [t for t in targets if t.exists()]
        for path in escaped:
            path.unlink()
    assert escaped == []


def test_untrusted_code_is_refused_where_there_is_no_bwrap(tmp_path, monkeypatch, caplog):
    real_which = shutil.which
    monkeypatch.setattr(sandbox.shutil, "which", lambda name, *a, **k: None if name == "bwrap" else real_which(name))
    sandbox.unavailable_reason.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match=r"refusing to run untrusted code.*bwrap is not installed"):
            sandbox.run(["true"], cwd=tmp_path, config=SandboxConfig(), trusted=False)
        with caplog.at_level(logging.WARNING, logger="forgeflow.sandbox"):
            outcome = sandbox.run(["true"], cwd=tmp_path, config=SandboxConfig(), trusted=True)
        assert outcome.ok and not outcome.sandboxed
        assert "running trusted true without a sandbox: bwrap is not installed" in caplog.text
    finally:
        sandbox.unavailable_reason.cache_clear()


def test_a_sandbox_that_cannot_be_made_is_named_and_off_is_for_trusted_code_only(tmp_path):
    broken = SandboxConfig(read_only=(tmp_path / "missing",))
    with pytest.raises(SandboxUnavailable, match="bwrap cannot make a sandbox here: bwrap: Can't find source path"):
        sandbox.run(["true"], cwd=tmp_path, config=broken, trusted=False)
    with pytest.raises(SandboxUnavailable, match="FORGEFLOW_SANDBOX is off"):
        sandbox.run(["true"], cwd=tmp_path, config=SandboxConfig(mode="off"), trusted=False)
    assert sandbox.run(["true"], cwd=tmp_path, config=SandboxConfig(), trusted=False).sandboxed


@pytest.mark.skipif(os.geteuid() != 0, reason="the files change owner only when the worker is root")
def test_the_project_is_the_workers_again_after_the_run(tmp_path):
    project = hook(tmp_path, "import os\nos.makedirs('made/deeper')\nos.symlink('/etc/shadow', 'made/link')\n")
    owners = {(p.lstat().st_uid, p.lstat().st_gid) for p in [project, *project.rglob("*")]}
    assert owners == {(os.getuid(), os.getgid())}
    assert Path("/etc/shadow").stat().st_uid == 0  # the link was not followed
