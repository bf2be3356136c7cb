"""``X-Hub-Signature-256``: HMAC-SHA256 of the raw body with the app secret, lowercase hex."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str | None, secrets: Iterable[str]) -> bool:
    """True when the header matches the body under one of the secrets (rotation). A header
    that is not ``sha256=`` and 64 hex digits is refused before any comparison: the header is
    anyone's text (``compare_digest`` raises on a non-ASCII ``str``)."""
    if not header or not header.startswith("sha256="):
        return False
    given = header.removeprefix("sha256=").strip().lower()
    if _HEX_DIGEST.fullmatch(given) is None:
        return False
    valid = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        valid |= hmac.compare_digest(expected.encode(), given.encode())
    return valid
