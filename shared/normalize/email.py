"""E-mail addresses: syntax checked with ``email-validator`` (no DNS look-up), case-folded."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email


def normalize_email(raw: str | None) -> str | None:
    """The case-folded address for a valid one, None for a missing or invalid one."""
    if raw is None or not raw.strip():
        return None
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    return result.normalized.casefold()
