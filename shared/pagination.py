"""Opaque keyset cursors: base64url of a small JSON list ``[instant, key]``, checked on the way
back in. A cursor is client input like any other: anything this API did not make (garbage, a
naive or out-of-range instant, an overlong key, control characters) is a 422 problem, never a
500 further down (a naive instant in a UTC column, an overflow in ``astimezone``)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from shared.errors import InvalidRequest
from shared.instants import within_bounds

MAX_CURSOR_CHARS = 512
MAX_KEY_CHARS = 200


def encode_cursor(moment: datetime, key: str) -> str:
    """The cursor of the row at (``moment``, ``key``); a naive ``moment`` is taken as UTC (as
    ``UtcDateTime`` reads SQLite's)."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    raw = json.dumps([moment.astimezone(UTC).isoformat(), key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, field: str = "cursor") -> tuple[datetime, str]:
    """(moment in UTC, key) of a cursor made by ``encode_cursor``; a 422 problem naming the
    query parameter ``field`` for anything else."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError("too long")
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(decoded, list) or len(decoded) != 2:
            raise ValueError("shape")
        moment_text, key = decoded
        if not isinstance(moment_text, str) or not isinstance(key, str):
            raise ValueError("types")
        if not 0 < len(key) <= MAX_KEY_CHARS or not key.isprintable():
            raise ValueError("key")
        moment = datetime.fromisoformat(moment_text)
        if not within_bounds(moment):
            raise ValueError("instant")
        return moment.astimezone(UTC), key
    except (binascii.Error, ValueError, TypeError, UnicodeError, RecursionError) as exc:
        raise InvalidRequest(
            "The cursor is not one this API returned.",
            errors=[
                {
                    "field": field,
                    "location": "query",
                    "type": "invalid_cursor",
                    "message": "unknown cursor",
                }
            ],
        ) from exc
