"""The test servers' ports come from below the kernel's ephemeral range, so an outgoing
connection of another process cannot take one between the pick and the server's bind."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.support.ports import free_port, free_ports


def _ephemeral_range() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def test_a_free_port_is_below_the_ephemeral_range_and_bindable() -> None:
    low, _ = _ephemeral_range()
    port = free_port()
    assert 1024 < port < low
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()


def test_no_port_is_handed_out_twice() -> None:
    ports = free_ports(50)
    assert len(set(ports)) == 50


def test_a_listening_port_is_never_handed_out() -> None:
    low, _ = _ephemeral_range()
    taken: list[socket.socket] = []
    try:
        # Occupy a block of the range so the pick has to step around listeners.
        for port in range(max(1025, low - 12000), max(1025, low - 12000) + 200):
            sock = socket.socket()
            try:
                sock.bind(("127.0.0.1", port))
                sock.listen()
            except OSError:
                sock.close()
                continue
            taken.append(sock)
        occupied = {sock.getsockname()[1] for sock in taken}
        assert not occupied & set(free_ports(100))
    finally:
        for sock in taken:
            sock.close()
