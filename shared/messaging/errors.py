"""Send failures, classified for the sender's retry decision. Their texts name codes and kinds,
never an address, a phone number or a message body (they end up in logs and status columns)."""

from __future__ import annotations

from shared.redact import SafeError


class SendError(SafeError):
    """A message was not handed over. ``transient``: try again later (with backoff);
    otherwise the message itself is refused and retrying cannot help."""

    transient: bool = True

    def __init__(self, reason: str, *, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code  # SMTP reply code or HTTP status, when there is one


class TransientSendError(SendError):
    """Connection refused or lost, timeout, 4xx reply, provider outage, rate limit, or a
    configuration problem (not configured, credentials refused): the message stays queued."""

    transient = True


class PermanentSendError(SendError):
    """5xx reply, invalid recipient, refused content: the message is failed for good."""

    transient = False


class NotConfigured(TransientSendError):
    """No server or provider is configured: messages wait until one is."""
