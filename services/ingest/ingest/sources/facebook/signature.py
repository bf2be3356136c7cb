"""``X-Hub-Signature-256``: HMAC-SHA256 of the raw body with the app secret, lowercase hex."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str | None, secrets: Iterable[str]) -> bool:
    """True when the header matches the body under one of the secrets (rotation)."""
    if not header or not header.startswith("sha256="):
        return False
    given = header.removeprefix("sha256=").strip().lower()
    valid = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        valid |= hmac.compare_digest(expected, given)
    return valid
