"""Free TCP ports on 127.0.0.1 for the servers a test or a benchmark starts.

Binding port 0 gives a port from the kernel's ephemeral range, and between that probe and the
server's own bind the same port can be handed out again as the local end of any outgoing
connection (a Kafka or PostgreSQL client in a process that is starting). The server then dies
with "Address already in use". So ports are picked below the ephemeral range, where only
listeners bind, each checked free and never handed out twice by one process."""

from __future__ import annotations

import random
import socket
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_DEFAULT_EPHEMERAL_LOW = 32768
_SPAN = 12000  # how many ports below the ephemeral range the picks come from
_LOWEST = 1025
_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _DEFAULT_EPHEMERAL_LOW


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _kernel_pick() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def free_port() -> int:
    """A port nothing listens on now, outside the ephemeral range, new to this process."""
    high = _ephemeral_low()
    low = max(_LOWEST, high - _SPAN)
    candidates = [port for port in range(low, high) if port not in _handed_out]
    random.shuffle(candidates)
    for port in candidates[:500]:
        if _bindable(port):
            _handed_out.add(port)
            return port
    return _kernel_pick()  # no room below the ephemeral range on this machine


def free_ports(count: int) -> list[int]:
    return [free_port() for _ in range(count)]
