"""What the small CPU benchmarks (``*_cpu.py``, run alone) share: their figures on the real
stdout while what the code under test prints goes nowhere, a count of function calls, and
requests sent straight to an ASGI app."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
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


class AsgiCaller:
    """Requests sent straight to an ASGI app as uvicorn would send them (no HTTP client, whose
    own CPU would be measured too), with a bearer token; returns the status and the body."""

    def __init__(self, app: Any, token: str, host: bytes = b"service.test") -> None:
        self.app = app
        self.headers = [
            (b"host", host),
            (b"authorization", f"Bearer {token}".encode()),
            (b"accept", b"*/*"),
        ]

    async def request(
        self, method: str, path: str, *, query: bytes = b"", body: bytes = b""
    ) -> tuple[int, bytes]:
        headers = self.headers
        if body:
            headers = [
                *headers,
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query,
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8002),
        }
        status, chunks = 0, []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


def load_module(name: str, path: str | os.PathLike[str]) -> ModuleType:
    """The module in the file ``path`` (another tree's copy of one of ours: a baseline to
    compare against in the same process), registered as ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module
