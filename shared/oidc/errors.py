"""Why an access token was refused, or could not be checked. Texts name a reason, never a value
taken from the token (a token may carry a name or an e-mail address)."""

from __future__ import annotations

from typing import Literal

from shared.redact import SafeError

RefusalReason = Literal[
    "malformed",
    "algorithm",
    "no-key-id",
    "unknown-key",
    "unusable-key",
    "signature",
    "issuer",
    "audience",
    "expired",
    "not-yet-valid",
    "missing-claim",
    "invalid",
]


class TokenRejected(SafeError):
    """The token is not a valid access token for this service (answered 401)."""

    def __init__(self, reason: RefusalReason) -> None:
        super().__init__(reason)
        self.reason: RefusalReason = reason

    @property
    def public_detail(self) -> str:
        # Only expiry is worth telling the caller (its client renews the token); the other
        # reasons stay in the service's log.
        if self.reason == "expired":
            return "The access token has expired."
        return "The access token is not valid for this service."


class KeysUnavailable(SafeError):
    """The provider's signing keys cannot be fetched now (answered 503: retry shortly)."""
