"""CPU time of processes from ``/proc`` (Linux): what a process spent, not what a sampler guessed.

``utime + stime`` of ``/proc/<pid>/stat`` are in clock ticks (usually 10 ms); over a load window
of tens of seconds and hundreds of leads the resolution is far below a millisecond per lead.
For a server made of many processes (PostgreSQL's postmaster and its backends) the figure is the
tree's: live children plus ``cutime + cstime`` of the parent, which holds the children that
exited and were reaped, so a backend that ends between two readings is still counted once.
"""

from __future__ import annotations

import os
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces.
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process (None when it is gone)."""
    fields = _fields(pid)
    if fields is None:
        return None
    # After the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14)
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND


def machine_ticks() -> tuple[int, int]:
    """All and idle (idle + iowait) clock ticks of every core since boot (``/proc/stat``)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields), fields[3] + fields[4]


def busy_fraction(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of the machine's cores busy between two ``machine_ticks`` readings."""
    total, idle = after[0] - before[0], after[1] - before[1]
    return 1.0 - idle / total if total > 0 else float("nan")


def _children(pid: int) -> list[int]:
    children: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _fields(int(entry.name))
        if fields is not None and fields[1] == str(pid):
            children.append(int(entry.name))
    return children


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of a process, its live children and its reaped children."""
    fields = _fields(pid)
    if fields is None:
        return None
    total = sum(int(value) for value in fields[11:15]) / TICKS_PER_SECOND
    for child in _children(pid):
        total += cpu_seconds(child) or 0.0
    return total


def pid_listening_on(port: int) -> int | None:
    """The process that listens on TCP ``port`` (IPv4 or IPv6), if this user can see it."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, state, inode = parts[1], parts[3], parts[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
                inodes.add(f"socket:[{inode}]")
    if not inodes:
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(entry.name)
        except OSError:
            continue
    return None
