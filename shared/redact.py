"""Error texts safe to log or store: exception types and field names, never input values.

Exceptions from drivers and validators often quote the offending values (an INSERT's parameters,
a field's input), which may be a name, a phone number or an e-mail address.
"""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy.exc import StatementError

_MAX = 500


class SafeError(Exception):
    """An error whose message is written to be free of personal data (ids and field names only)."""


def safe_error_text(exc: BaseException) -> str:
    if isinstance(exc, SafeError):
        return f"{type(exc).__name__}: {exc}"[:_MAX]
    if isinstance(exc, ValidationError):
        fields = sorted(
            {".".join(str(part) for part in err["loc"]) for err in exc.errors(include_input=False)}
        )
        return f"ValidationError in {exc.title}: {', '.join(fields)}"[:_MAX]
    if isinstance(exc, StatementError) and exc.orig is not None:
        return f"{type(exc).__name__} ({type(exc.orig).__name__})"
    return type(exc).__name__
