"""A corpus of bad input, by where it goes: path segments, query values, whole bodies and body
fields. Sizes (empty, huge, over the body limit), encodings (invalid UTF-8, UTF-16 with BOMs),
nesting, dates (limits, naive, offsets of ±14 h, years 0 and 9999), ids (overlong, NUL,
unicode, path traversal), cursors (forged, truncated), control characters and numbers (huge,
NaN, infinities, negative)."""

from __future__ import annotations

import base64
import json
from typing import Any

MIB = 1024 * 1024


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


# Already percent-encoded: some are bytes no client would send (invalid UTF-8, NUL).
PATH_SEGMENTS: dict[str, str] = {
    "overlong id": "a" * 5000,
    "NUL": "abc%00def",
    "escape": "abc%1B%5B2J",
    "unicode": "%C3%A9l%C3%A8ve-%F0%9F%98%80",
    "right-to-left override": "%E2%80%AEabc",
    "invalid UTF-8": "%FF%FE%FD",
    "lone surrogate (CESU)": "%ED%A0%80",
    "path traversal": "..%2F..%2Fetc%2Fpasswd",
    "dot dot": "%2E%2E",
    "percent": "%25",
    "spaces": "%20%20",
    "SQL": "1%27%20OR%20%271%27%3D%271",
}

QUERY_VALUES: dict[str, str] = {
    "empty": "",
    "huge": "x" * 30_000,  # what a client's URL limit lets through
    "NUL": "%00",
    "escape": "%1B%5B31m",
    "invalid UTF-8": "%FF%FE",
    "emoji": "%F0%9F%98%80" * 50,
    "naive instant": "2026-01-01T00:00:00",
    "offset +14h": "2026-01-01T00:00:00%2B14:00",
    "offset -14h": "2026-01-01T00:00:00-14:00",
    "year 0": "0000-01-01T00:00:00Z",
    "year 9999 at -14h": "9999-12-31T23:59:59-14:00",
    "year 1 at +14h": "0001-01-01T00:00:00%2B14:00",
    "impossible date": "2026-13-45",
    "huge integer": "9" * 400,
    "negative": "-1",
    "NaN": "NaN",
    "infinity": "Infinity",
    "overflowing float": "1e309",
    "forged cursor, extreme instant": _cursor(["9999-12-31T23:59:59-14:00", "k"]),
    "forged cursor, naive instant": _cursor(["2026-01-01T00:00:00", "k"]),
    "forged cursor, NUL key": _cursor(["2026-01-01T00:00:00+00:00", "k\u0000"]),
    "truncated cursor": _cursor(["2026-01-01T00:00:00+00:00", "k"])[:7],
    "path traversal": "..%2F..%2Fetc%2Fpasswd",
    "array": "a&{name}=b&{name}=c",
}


def _nested_lists(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


JSON_BODIES: dict[str, bytes] = {
    "empty": b"",
    "whitespace": b" \r\n\t ",
    "truncated": b'{"a": ',
    "null": b"null",
    "a list": b"[]",
    "a string": b'"x"',
    "nested 100,000 deep": _deep(100_000),
    "objects nested 5,000 deep": b'{"a":' * 5000 + b"1" + b"}" * 5000,
    "over the body limit": b'{"x": "' + b"a" * (MIB + 10) + b'"}',
    "invalid UTF-8": b'{"name": "\xff\xfe\xfd"}',
    "UTF-16 with BOM": "\ufeff{}".encode("utf-16-le"),
    "UTF-8 with BOM": b"\xef\xbb\xbf{}",
    "NaN": b'{"a": NaN}',
    "infinity": b'{"a": -Infinity}',
    "a 5,000-digit integer": b'{"a": ' + b"9" * 5000 + b"}",
    "NUL escaped": b'{"a": "\\u0000"}',
    "lone surrogate": b'{"a": "\\ud800"}',
    "duplicate keys": b'{"a": 1, "a": 2}',
}

FIELD_VALUES: dict[str, Any] = {
    "huge string": "x" * 100_000,
    "NUL": "a\u0000b",
    "escape": "\u001b[2J",
    "right-to-left override": "\u202eabc",
    "emoji": "😀" * 500,
    "huge integer": 10**30,
    "negative": -1,
    "zero": 0,
    "largest float": 1.7976931348623157e308,
    "year 9999 at -14h": "9999-12-31T23:59:59-14:00",
    "year 1 at +14h": "0001-01-01T00:00:00+14:00",
    "naive instant": "2026-01-01T00:00:00",
    "nested lists": _nested_lists(20),
    "an object": {"$ne": None},
    "true": True,
    "null": None,
    "path traversal": "../../etc/passwd",
    "loopback URL": "http://127.0.0.1:22/",
}

# Valid bodies the field values are laid over, so a bad field reaches the handler and the
# database rather than stopping at a missing required field.
BASE_BODIES: dict[str, dict[str, Any]] = {
    "ingest POST /v1/leads": {
        "source": "leboncoin",
        "source_ref": "corpus-1",
        "contact": {"full_name": "Prospect Corpus", "phone": "06 12 34 56 78"},
        "vehicle": {"ad_ref": "AD-CORPUS"},
    },
    "dispatch POST /v1/sellers": {"display_name": "Corpus seller", "mode": "full_web"},
    "dispatch POST /v1/sites": {
        "id": "corpus",
        "name": "Corpus",
        "postcode": "75001",
        "opening_hours": "mon-fri 09:00-18:00",
    },
    "dispatch PUT /v1/vehicles/{ad_ref}": {"site_id": "corpus"},
    "crm POST /v1/privacy/objections": {"phone": "06 12 34 56 78"},
    "crm POST /v1/privacy/erasure-requests": {"client_id": "corpus-client"},
    "crm POST /v1/clients/{client_id}/split": {"lead_ids": ["corpus-lead"]},
    "qualify POST /v1/leads/{lead_id}/attempts": {"channel": "phone", "outcome": "no_answer"},
    "qualify POST /v1/leads/{lead_id}/qualification": {"intent": "buy", "channel": "full_web"},
}


def body_properties(document: dict[str, Any], operation: dict[str, Any]) -> list[str]:
    """The top-level properties of the operation's JSON body (its ``$ref`` resolved)."""
    schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    schema = schema.get("schema", {})
    reference = schema.get("$ref", "")
    if reference:
        schema = document["components"]["schemas"][reference.rsplit("/", 1)[-1]]
    return sorted(schema.get("properties", {}))
