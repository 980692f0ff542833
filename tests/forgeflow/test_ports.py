"""forgeflow.ports: ports picked together are distinct and free."""

from __future__ import annotations

import socket

from forgeflow.ports import free_port, free_ports


def test_ports_picked_together_are_distinct_and_free():
    for _ in range(20):
        ports = free_ports(8)
        assert len(set(ports)) == 8
        with socket.socket() as first, socket.socket() as last:  # nothing holds them any more
            first.bind(("127.0.0.1", ports[0]))
            last.bind(("127.0.0.1", ports[-1]))
    assert 0 < free_port() < 65536
