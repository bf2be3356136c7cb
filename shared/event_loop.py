"""Run a process's main coroutine on uvloop, the event loop uvicorn already gives the APIs.

The workers are a stream of small database and broker round trips: most of their CPU not spent
in SQLAlchemy is the event loop's own (scheduling callbacks, reading sockets). uvloop does that
in C. It ships with ``uvicorn[standard]`` on every platform but Windows, where the standard loop
runs instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

try:
    import uvloop
except ImportError:  # pragma: no cover - Windows: no uvloop wheel
    uvloop = None  # type: ignore[assignment]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop when it is installed."""
    if uvloop is None:  # pragma: no cover - Windows
        return asyncio.run(main)
    return uvloop.run(main)
