"""The SMS provider interface: what the senders and the inbound channel need from any provider.

An adapter sends one SMS and returns the provider's message id; it reads delivery receipts and
inbound messages both as pushed to us (the provider calls our URL: ``parse_*``) and by asking
(``fetch_*``, for providers or set-ups without callbacks). Failures are ``SendError``s
(``shared.messaging.errors``); a payload we cannot read is ``InvalidProviderPayload``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from shared.redact import SafeError

DeliveryState = Literal["accepted", "pending", "delivered", "failed"]


class InvalidProviderPayload(SafeError):
    """A callback or an API answer we cannot read (its text names fields, never values)."""


@dataclass(frozen=True)
class OutgoingSms:
    to: str  # E.164, e.g. "+33612345678"
    text: str  # the whole text, opt-out line included (``sms_text.fit_sms``)
    tag: str | None = None  # a provider-side label (e.g. our message key), not personal data


@dataclass(frozen=True)
class SentSms:
    provider_message_id: str
    credits: float | None = None  # what the provider charged, when it says


@dataclass(frozen=True)
class DeliveryReceipt:
    provider_message_id: str
    state: DeliveryState  # accepted: taken by the operator; pending: buffered, still trying
    code: str  # the provider's own status code, for the record
    permanent: bool = False  # for "failed": the number cannot receive (do not retry it)
    at: datetime | None = None


@dataclass(frozen=True)
class InboundSms:
    provider_message_id: str
    sender: str  # the prospect's number, E.164
    text: str
    received_at: datetime | None
    tag: str | None = None


class SmsProvider(Protocol):
    name: str

    @property
    def configured(self) -> bool: ...

    async def send(self, sms: OutgoingSms) -> SentSms:
        """Raises ``TransientSendError`` (retry later) or ``PermanentSendError``."""
        ...

    def parse_delivery_receipt(self, params: Mapping[str, str]) -> DeliveryReceipt:
        """A receipt the provider pushed to our callback URL (query or form fields)."""
        ...

    def parse_inbound(self, payload: Mapping[str, Any]) -> InboundSms:
        """One inbound message as the provider describes it."""
        ...

    async def fetch_delivery_receipt(self, provider_message_id: str) -> DeliveryReceipt:
        """The current state of a sent message, asked of the provider."""
        ...

    async def find_sent(self, tag: str) -> list[str]:
        """Provider ids of the messages sent with ``tag`` (``OutgoingSms.tag``): after a crash
        between the send call and its record, whether the message left."""
        ...

    async def fetch_inbound(self) -> list[InboundSms]:
        """Inbound messages waiting at the provider (until ``acknowledge_inbound``)."""
        ...

    async def acknowledge_inbound(self, provider_message_id: str) -> None:
        """Remove a stored inbound message at the provider (once we have recorded it)."""
        ...

    async def aclose(self) -> None: ...
