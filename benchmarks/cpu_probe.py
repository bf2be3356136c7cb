"""What the small CPU benchmarks (``*_cpu.py``, run alone) share: their figures on the real
stdout while what the code under test prints goes nowhere, and a count of function calls."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any


def figures_out() -> IO[str]:
    """The process's stdout for the figures; from now on file descriptor 1 (the access log, one
    JSON line per request, part of the CPU measured) writes to /dev/null."""
    out = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    return out


@contextmanager
def counted_calls() -> Iterator[list[int]]:
    """The Python and C function calls made while the block runs (this thread): a count the
    machine's load does not blur, unlike CPU time."""
    counted = [0]

    def count(frame: Any, what: str, arg: Any) -> None:
        if what in ("call", "c_call"):
            counted[0] += 1

    sys.setprofile(count)
    try:
        yield counted
    finally:
        sys.setprofile(None)
