"""Opaque keyset cursors: base64url of a small JSON list, checked on the way back in."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from shared.errors import InvalidRequest


def encode_cursor(moment: datetime, key: str) -> str:
    raw = json.dumps([moment.isoformat(), key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(moment, key) of a cursor made by ``encode_cursor``; a 422 problem for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        moment, key = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(key, str):
            raise ValueError("key")
        return datetime.fromisoformat(moment), key
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(
            "The cursor is not one this API returned.",
            errors=[
                {
                    "field": "cursor",
                    "location": "query",
                    "type": "invalid_cursor",
                    "message": "unknown cursor",
                }
            ],
        ) from exc
