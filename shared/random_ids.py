"""Random ids on the request path (a lead's id, a request id, trace and span ids), drawn from the
operating system's CSPRNG a few kilobytes at a time.

``uuid.uuid4()`` and ``secrets.token_hex`` ask ``os.urandom`` for every id: one ``getrandom``
system call each (~2 µs here), and ``str(uuid4())`` costs ~4 µs more in Python. A JSON lead needs
four or five such ids. The bytes are the same ``os.urandom`` bytes, only fetched 4 KiB at once and
handed out once each (a lock keeps two threads from taking the same slice; a forked child starts
with a fresh pool, never the parent's bytes).
"""

from __future__ import annotations

import os
import threading

_POOL_BYTES = 4096
_lock = threading.Lock()
_pool = b""
_offset = 0

_VERSION_MASK = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_4 = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant


def _forget_pool() -> None:
    global _pool, _offset
    _pool, _offset = b"", 0


os.register_at_fork(after_in_child=_forget_pool)


def random_bytes(size: int) -> bytes:
    """``size`` bytes from ``os.urandom`` (at most a pool's worth), never handed out twice."""
    global _pool, _offset
    with _lock:
        end = _offset + size
        if end > len(_pool):
            _pool, _offset, end = os.urandom(max(_POOL_BYTES, size)), 0, size
        chunk = _pool[_offset:end]
        _offset = end
    return chunk


def random_hex(size: int) -> str:
    """``secrets.token_hex(size)``: ``size`` random bytes as hex."""
    return random_bytes(size).hex()


def uuid4_text() -> str:
    """``str(uuid.uuid4())``: a random (version 4) UUID in its canonical text form."""
    value = (int.from_bytes(random_bytes(16), "big") & _VERSION_MASK) | _VERSION_4
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
