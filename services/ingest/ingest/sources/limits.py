"""Per-route body limits, for routes that read raw bodies.

The shared middleware enforces ``max_body_bytes`` (the raw e-mail limit, the largest); JSON and
XML routes read their body through ``read_limited`` with ``max_json_bytes``.
"""

from __future__ import annotations

from fastapi import Request

from shared.errors import PayloadTooLarge


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body exceeds {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body exceeds {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)
