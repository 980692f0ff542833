"""`forgeflow dev` supervises its children: they die with it even when it is SIGKILLed, a
taken port refuses the start (naming it and its holder), a dying child is named."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess

from forgeflow.ports import free_ports
from tests.forgeflow.dev_helpers import (
    DevStack,
    children_of,
    listening,
    newcomer_env,
    pid_gone,
    wait_until,
)


def reap(children: dict[int, str]) -> None:
    # After a failure, no orphan of this test keeps running on the shared machine.
    for pid in children:
        if not pid_gone(pid):
            os.kill(pid, signal.SIGKILL)


def test_sigkill_of_dev_takes_every_child_with_it(tmp_path):
    stack = DevStack(tmp_path, newcomer_env(tmp_path))
    children: dict[int, str] = {}
    try:
        stack.wait_up()
        children = children_of(stack.proc.pid)
        kinds = sorted(" ".join(c.split()[1:4]) for c in children.values())
        assert len(children) == 3, children
        assert any("server start-dev" in k for k in kinds) and any("forgeflow worker" in k for k in kinds)
        # No handler, no `finally`: only the kernel can tell the children.
        stack.proc.send_signal(signal.SIGKILL)
        stack.proc.wait(timeout=30)
        wait_until(lambda: all(pid_gone(pid) for pid in children), 60, f"children still alive: {children}")
        for port in (stack.api_port, stack.temporal_port, stack.ui_port):
            wait_until(lambda p=port: not listening(p), 30, f"port {port} still open")
    finally:
        stack.stop()
        reap(children)


def test_a_taken_port_refuses_the_start_naming_the_port_and_its_holder(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        temporal_port, ui_port = free_ports(2)
        done = subprocess.run(
            [
                *("forgeflow", "dev", "--api-port", str(taken), "--temporal-port", str(temporal_port)),
                *("--ui-port", str(ui_port), "--data-dir", str(tmp_path / "data")),
            ],
            cwd=tmp_path,
            env=newcomer_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1, (done.stdout, done.stderr)
    # The holder is this test's own process: its pid, as read from /proc.
    assert f"port {taken} (API) is taken by pid {os.getpid()}" in done.stderr, done.stderr
    assert "--api-port" in done.stderr and "Traceback" not in done.stderr
    assert "stack is up" not in done.stdout
    # Nothing was started: Temporal's port stays free, no data was made.
    assert not listening(temporal_port) and not (tmp_path / "data" / "temporal.db").exists()


def test_a_dying_child_is_named_with_its_signal_and_the_rest_stopped(tmp_path):
    env = newcomer_env(tmp_path)
    stack = DevStack(tmp_path, env)
    children: dict[int, str] = {}
    try:
        stack.wait_up()
        children = children_of(stack.proc.pid)
        (worker,) = [pid for pid, cmd in children.items() if cmd.endswith("forgeflow worker")]
        state = list((tmp_path / "run" / "forgeflow").glob("dev-*.json"))
        assert [json.loads(p.read_text())["pid"] for p in state] == [stack.proc.pid]
        os.kill(worker, signal.SIGKILL)
        assert stack.proc.wait(timeout=90) == 1
        stack.wait_for("; stopping the others", 10)
        assert f"the worker (pid {worker}) was killed by signal SIGKILL; stopping the others" in stack.output
        wait_until(lambda: all(pid_gone(pid) for pid in children), 60, f"children still alive: {children}")
        assert not listening(stack.api_port) and not listening(stack.temporal_port)
        # It no longer says where a stack lives.
        assert not list((tmp_path / "run" / "forgeflow").glob("dev-*.json"))
    finally:
        stack.stop()
        reap(children)
