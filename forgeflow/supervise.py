"""What ``forgeflow dev`` needs to supervise its children: they die with it, ports it needs
are checked (and their holder named) before anything starts, and a child's end is told
in words (exit code or signal)."""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel send ``sig`` to the child when its parent dies,
    however it dies (SIGKILL and OOM kills too, where no handler or ``finally`` runs).
    Linux only; None elsewhere. The setting survives the child's exec."""
    if not sys.platform.startswith("linux"):
        return None
    # Loaded here, before the fork: the preexec_fn runs between fork and exec, where loading
    # a library (and so taking the loader's locks) could deadlock.
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        # The parent may have died between fork and prctl: then nobody would signal us.
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return preexec


def describe_exit(returncode: int) -> str:
    """``exited with code 1`` / ``was killed by signal SIGKILL`` (Popen's negative codes)."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return f"was killed by signal {name}"
    return f"exited with code {returncode}"


def port_taken(host: str, port: int) -> bool:
    """Whether a server could not bind ``host:port`` now. SO_REUSEADDR as servers set it, so
    a port only in TIME_WAIT after a previous run does not count as taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def port_holder(port: int) -> str | None:
    """Who listens on TCP ``port``: ``pid 123 (temporal server start-dev …)``, read from
    /proc (the listening socket's inode, then the process holding it). None where /proc
    says nothing (another OS, or a process of another user)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local_address is HEXIP:HEXPORT; state 0A is LISTEN; field 9 the inode.
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            held = any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir())
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if held:
            return f"pid {proc.name} ({_command_line(proc)})"
    return None


def _command_line(proc: Path) -> str:
    try:
        words = (proc / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return "?"
    text = " ".join(" ".join(w.decode(errors="replace").split()) for w in words)  # one line
    return text if len(text) <= 120 else text[:117] + "..."


def taken_ports(wanted: list[tuple[str, str, int, str]]) -> list[str]:
    """One line per port of ``(what, host, port, option)`` that is taken, naming its holder."""
    problems = []
    for what, host, port, option in wanted:
        if port_taken(host, port):
            holder = port_holder(port) or "another process"
            problems.append(f"port {port} ({what}) is taken by {holder}: stop it, or choose another with {option}")
    return problems
