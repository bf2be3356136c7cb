"""Refuses control characters in what a request says, once for every route (called by the
request middleware, ``shared.http``): a 422 problem for a
NUL or another C0 control character in a path, a query parameter or a JSON string (key or
value), and for a lone UTF-16 surrogate in a JSON string.

PostgreSQL refuses NUL in ``text`` and cannot encode a lone surrogate: stored through an API,
either is a 500 waiting to happen, and no name, reference, id or note needs them. Tab, line feed
and carriage return stay allowed inside JSON strings (a note may have lines); nowhere else.

Cost: the path is one regular-expression search; a query string or a JSON body is parsed again
only when its raw bytes hold an escape that could encode such a character (``%0x``/``%1x``,
``\\u00xx``, ``\\b``, ``\\f``, ``\\udxxx``), which ordinary requests do not.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import Scope

from shared.errors import InvalidRequest

_ANY_CONTROL = re.compile(r"[\x00-\x1f]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
_ESCAPED_CONTROL_IN_QUERY = re.compile(rb"%[01][0-9a-fA-F]|[\x00-\x1f]")
_ESCAPED_CONTROL_IN_JSON = re.compile(rb"\\(?:u00[01]|u[dD][89a-fA-F]|[bf])")
_MESSAGE = "control characters (NUL…) are not accepted"


def refused_in_target(scope: Scope) -> InvalidRequest | None:
    """The 422 problem for a control character in the path or the query string, or None."""
    return _problem(_in_path(scope) or _in_query(scope))


def refused_in_json(body: bytes) -> InvalidRequest | None:
    """The 422 problem for a control character or a lone surrogate in a JSON body, or None."""
    return _problem(_in_json(body))


def _problem(refused: tuple[str, str] | None) -> InvalidRequest | None:
    if refused is None:
        return None
    location, field = refused
    return InvalidRequest(
        f"Invalid {location} value: {field}",
        errors=[
            {
                "field": field,
                "location": location,
                "type": "control_character",
                "message": _MESSAGE,
            }
        ],
    )


def _in_path(scope: Scope) -> tuple[str, str] | None:
    return ("path", "path") if _ANY_CONTROL.search(scope.get("path", "")) else None


def _in_query(scope: Scope) -> tuple[str, str] | None:
    raw: bytes = scope.get("query_string", b"")
    if not raw or not _ESCAPED_CONTROL_IN_QUERY.search(raw):
        return None
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if _ANY_CONTROL.search(name) or _ANY_CONTROL.search(value):
            return ("query", "query" if _ANY_CONTROL.search(name) else name)
    return None


def _in_json(body: bytes) -> tuple[str, str] | None:
    if not _ESCAPED_CONTROL_IN_JSON.search(body):
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None  # not JSON: the route's own parsing answers that
    field = _first_control(document)
    return ("body", field) if field is not None else None


def _first_control(document: Any) -> str | None:
    """The dotted path of the first string (key or value) holding a refused character."""
    pending: list[tuple[str, Any]] = [("", document)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            if _CONTROL_IN_TEXT.search(value):
                return path or "body"
        elif isinstance(value, dict):
            for key, inner in value.items():
                if _CONTROL_IN_TEXT.search(key):
                    return path or "body"
                pending.append((f"{path}.{key}" if path else key, inner))
        elif isinstance(value, list):
            pending.extend(
                (f"{path}.{index}" if path else str(index), inner)
                for index, inner in enumerate(value)
            )
    return None
