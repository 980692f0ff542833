"""A real `forgeflow dev` on free ports, as a child of the test: its output, its children."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from forgeflow.ports import free_ports

# Generous: a first start creates Temporal's database and migrates ours, on 2 shared cores.
START_SECONDS = 120


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def newcomer_env(tmp_path: Path) -> dict[str, str]:
    """A shell after `source .venv/bin/activate`, with no FORGEFLOW_ variable set, and its own
    per-user state directory (XDG_RUNTIME_DIR), so stacks other test runs start on this
    machine are not seen."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORGEFLOW_", "TEMPORAL_", "DJASS_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    (tmp_path / "run").mkdir(exist_ok=True, mode=0o700)
    return env


def pid_gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody has reaped yet (its parent died and the
    machine's init may not reap), which holds no port or file any more."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def children_of(pid: int) -> dict[int, str]:
    """Live child processes of ``pid`` and their command lines."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found[int(proc.name)] = cmdline
    return found


class DevStack:
    def __init__(
        self, tmp_path: Path, env: dict[str, str], *, api_port: int | None = None, args: tuple[str, ...] = ()
    ) -> None:
        picked, self.temporal_port, self.ui_port = free_ports(3)
        self.api_port = api_port or picked
        self.data_dir = tmp_path / "data"
        self.env = env
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [
                *("forgeflow", "dev", "--api-port", str(self.api_port), "--temporal-port", str(self.temporal_port)),
                *("--ui-port", str(self.ui_port), "--data-dir", str(self.data_dir)),
                *args,
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # Always drained: the stack logs every request, and a full pipe would block a child.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, seconds: float = START_SECONDS) -> str:
        deadline = time.monotonic() + seconds
        while text not in self.output:
            assert time.monotonic() < deadline, f"no {text!r} after {seconds} s:\n{self.output[-4000:]}"
            if self.proc.poll() is not None:
                self._reader.join(timeout=5)
                assert text in self.output, f"dev exited {self.proc.returncode} before {text!r}:\n{self.output}"
            time.sleep(0.1)
        return self.output

    def wait_up(self) -> None:
        output = self.wait_for("Ctrl-C stops everything")
        self.key = re.search(r"DJASS_API_KEY=(\S+)", output).group(1)
        self.base = re.search(r"DJASS_BASE_URL=(\S+)", output).group(1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=10)


def wait_until(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"{what} after {seconds} s"
        time.sleep(0.1)
