"""The ways out: e-mail through SMTP, SMS through the provider. Each hands one claimed message
over and calls ``hand_over`` just before the irreversible step (SMTP DATA, the provider's POST),
so that the sender records "it may have left" first (docs/messaging.md, crash safety)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from qualify.messages.compose import Composer
from shared.events.payloads import MessageChannel, MessageKind
from shared.messaging.outgoing_email import render_email
from shared.messaging.settings import OvhSmsSettings
from shared.messaging.sms.ovh import OvhSmsProvider
from shared.messaging.sms.provider import OutgoingSms, SmsProvider
from shared.messaging.smtp_sender import SmtpSender

HandOver = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Job:
    """A claimed message, as the sender hands it over (a snapshot of its row)."""

    message_id: str
    lead_id: str
    kind: MessageKind
    channel: MessageChannel
    to_address: str
    subject: str | None
    text: str
    html: str | None
    in_reply_to_header: str | None
    created_at: datetime
    claim_token: str
    attempts: int
    operator_id: str | None
    attempt_id: str | None
    # Event-loop time by which this sender must be done with it (half its lease after the claim).
    deadline: float = 0.0


class Channel(Protocol):
    name: MessageChannel
    # Whether the far side can say if a message left (so a crash after hand-over is resolved).
    verifiable: bool

    @property
    def configured(self) -> bool: ...

    async def send(self, job: Job, hand_over: HandOver) -> str | None:
        """Hand ``job`` over; the server's or provider's id of it. Raises ``SendError``."""
        ...

    async def find_sent(self, job: Job) -> str | None:
        """The provider's id of ``job`` if it left, else None (verifiable channels only)."""
        ...


class EmailChannel:
    name: MessageChannel = "email"
    verifiable = False  # nobody can be asked whether an SMTP server took a message

    def __init__(self, smtp: SmtpSender, composer: Composer) -> None:
        self._smtp = smtp
        self._composer = composer

    @property
    def configured(self) -> bool:
        return self._smtp.configured

    async def send(self, job: Job, hand_over: HandOver) -> str | None:
        composer = self._composer
        settings = composer.settings
        mailbox = settings.message_reply_mailbox
        unsubscribe = composer.unsubscribe(job.lead_id)
        message = render_email(
            tokens=composer.tokens,
            lead_id=job.lead_id,
            message_key=job.message_id,
            sender=f"{settings.message_dealer_name} <{settings.message_from_address}>",
            to=job.to_address,
            reply_mailbox=mailbox,
            subject=job.subject or settings.message_dealer_name,
            text=job.text,
            html=job.html,
            date=job.created_at,  # one Date, like one Message-ID, whatever the retries
            unsubscribe=unsubscribe,
            # Without an https URL (no one-click), the mailto alone.
            list_unsubscribe=None if unsubscribe else composer.unsubscribe_mailto(job.lead_id),
            in_reply_to=job.in_reply_to_header,
            auto_reply=job.kind == "first_answer",
        )
        sent = await self._smtp.send(
            message,
            # A VERP Return-Path: the bounce comes back to the lead's plus-address.
            envelope_from=composer.tokens.reply_address(job.lead_id, mailbox=mailbox),
            before_data=hand_over,
        )
        return sent.queue_id

    async def find_sent(self, job: Job) -> str | None:
        raise NotImplementedError("SMTP cannot be asked whether it took a message")


class SmsChannel:
    name: MessageChannel = "sms"
    verifiable = True  # the provider lists what it sent by our tag

    def __init__(self, provider: SmsProvider) -> None:
        self._provider = provider

    @property
    def configured(self) -> bool:
        return self._provider.configured

    async def send(self, job: Job, hand_over: HandOver) -> str | None:
        await hand_over()
        sent = await self._provider.send(
            OutgoingSms(to=job.to_address, text=job.text, tag=job.message_id)
        )
        return sent.provider_message_id

    async def find_sent(self, job: Job) -> str | None:
        found = await self._provider.find_sent(job.message_id)
        return found[0] if found else None


def sms_provider(settings: OvhSmsSettings) -> SmsProvider:
    """The SMS provider of these settings (OVHcloud, the one adapter today)."""
    return OvhSmsProvider(settings)
