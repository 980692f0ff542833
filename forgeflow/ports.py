"""Free TCP ports on the loopback, for the processes that a dev stack, a benchmark or a
test starts and tells where to listen."""

from __future__ import annotations

import socket
from contextlib import ExitStack

LOOPBACK = "127.0.0.1"


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct ports nothing listens on now. Every socket is held until all are
    bound: the system may hand a port out again once its socket is closed, so ports picked
    one after the other can be the same one, and the process given both fails with
    "address already in use". Nothing stops another process from taking a port before
    the one it is meant for binds it: a starter that can, tries again (bench/stack.py)."""
    with ExitStack() as held:
        socks = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on now."""
    return free_ports(1, host)[0]
