"""The worker's messaging loops: the sender (woken as soon as a committed transaction queued a
message, else polling slowly) and the SMS receipts poller (which also points the provider's
receipt callback at us)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from qualify.config_cache import ConfigView
from qualify.messages.channels import EmailChannel, SmsChannel, sms_provider
from qualify.messages.compose import Composer
from qualify.messages.first_answer import (
    CheckedContacts,
    FirstAnswerContacts,
    first_answer_contacts,
    schedule_first_answer,
)
from qualify.messages.handoff import SenderHandoff
from qualify.messages.metrics import MessagingMetrics
from qualify.messages.receipts import ReceiptPoller
from qualify.messages.sender import MessageSender
from qualify.models import OutgoingMessage, QueuedLead
from qualify.settings import QualifySettings
from shared.db.session import wakeups_of
from shared.db.wakeup import Signal
from shared.jobs import StepLoop
from shared.messaging.sms.ovh import OvhSmsProvider
from shared.messaging.smtp_sender import SmtpSender
from shared.redact import safe_error_text
from shared.runtime import Runtime
from shared.worker import Loop

log = structlog.get_logger(__name__)

_PAUSE_AFTER_ERROR_S = 5.0


class FirstAnswerStep:
    """The queue consumer's hook on a new lead: decide the first answer in its transaction. With
    ``handoff``, this process's running sender claims it at birth and sends it once that
    transaction committed; else the message queued wakes the sender (``MessageRepository``)."""

    def __init__(self, composer: Composer, handoff: SenderHandoff | None = None) -> None:
        self._composer = composer
        self._handoff = handoff

    def contacts(self, lead: QueuedLead) -> FirstAnswerContacts:
        """What the first answer of ``lead`` checks (the handler reads the lists with the
        lead's insert)."""
        return first_answer_contacts(self._composer.settings, lead)

    async def __call__(
        self,
        session: AsyncSession,
        lead: QueuedLead,
        now: datetime,
        config: ConfigView,
        checked: CheckedContacts | None = None,
    ) -> None:
        await schedule_first_answer(
            session,
            self._composer,
            lead,
            now=now,
            handoff=self._handoff,
            config=config,
            checked=checked,
        )


def sender_wakeup(runtime: Runtime[QualifySettings]) -> Signal:
    """Notified once a transaction that queued a message committed: in this process (the
    consumer's first answers) at once, from the API (operators' messages) through the database
    (``shared.db.wakeup``: the ``outgoing_message`` trigger on PostgreSQL, SQLite's
    ``data_version``)."""
    return wakeups_of(runtime.session_factory).signal(OutgoingMessage.__tablename__)


class SenderLoop:
    """Runs the sender until stopped: a full batch goes on at once; otherwise it waits for a
    wake-up (a message queued by any process) or the fallback poll (retries coming due, expired
    claims). A stop lets the sends in flight finish (their answers are recorded)."""

    name = "qualify.messages"

    def __init__(
        self,
        runtime: Runtime[QualifySettings],
        composer: Composer,
        wakeup: Signal,
        metrics: MessagingMetrics | None = None,
        handoff: SenderHandoff | None = None,
    ) -> None:
        self._runtime = runtime
        self._composer = composer
        self._wakeup = wakeup
        self._metrics = metrics
        self._handoff = handoff

    async def run(self, stop: asyncio.Event) -> None:
        runtime = self._runtime
        settings = runtime.settings
        provider = sms_provider(settings)
        # Kept open between messages (a new SMTP connection per message costs more CPU than
        # the message); closed when idle and when the loop stops.
        smtp = SmtpSender(settings, reuse_connections=True)
        sender = MessageSender(
            runtime.session_factory,
            settings,
            {
                "email": EmailChannel(smtp, self._composer),
                "sms": SmsChannel(provider),
            },
            outbox=runtime.outbox,
            clock=runtime.clock,
            metrics=self._metrics,
            hold_connections=True,
        )
        if self._handoff is not None:
            self._handoff.attach(sender)
        try:
            while not stop.is_set():
                seen = self._wakeup.generation  # a wake-up during the pass ends the next wait
                try:
                    claimed = await sender.send_due()
                except Exception as exc:
                    log.error("message.sender_failed", error=safe_error_text(exc))
                    pause = _PAUSE_AFTER_ERROR_S
                else:
                    pause = (
                        0.0 if claimed >= sender.batch_size else settings.message_poll_interval_s
                    )
                if pause > 0:
                    await self._wakeup.wait(seen, pause, stop)
                else:
                    await asyncio.sleep(0)
        finally:
            if self._handoff is not None:
                self._handoff.detach(sender)
            await sender.drain()  # the first answers claimed at birth finish too
            await sender.aclose()
            await smtp.aclose()
            await provider.aclose()


def receipt_loop(runtime: Runtime[QualifySettings]) -> StepLoop | None:
    """Asks the provider for SMS receipts; registers our callback URL first when one is set."""
    settings = runtime.settings
    secret = settings.message_sms_receipt_secret
    base = settings.message_public_base_url
    callback_url = (
        f"{base}/v1/sms/delivery-receipts/{secret.get_secret_value()}" if base and secret else None
    )
    interval = settings.message_sms_receipt_poll_s
    if not settings.ovh_configured or (interval <= 0 and callback_url is None):
        return None
    provider = OvhSmsProvider(settings)
    poller = ReceiptPoller(
        runtime.session_factory,
        provider,
        outbox=runtime.outbox,
        interval=timedelta(seconds=max(interval, 1.0)),
    )
    registered = callback_url is None

    async def step() -> float:
        nonlocal registered
        if not registered and callback_url is not None:
            await provider.set_delivery_callback(callback_url)
            registered = True
            log.info("message.receipt_callback_registered")
        if interval <= 0:
            return 3600.0
        await poller.poll_once(runtime.clock())
        return interval

    return StepLoop(name="qualify.sms-receipts", step=step, close=provider.aclose)


def messaging_loops(
    runtime: Runtime[QualifySettings], composer: Composer, handoff: SenderHandoff | None = None
) -> list[Loop]:
    """The sender (which takes the first answers ``handoff`` gives it) and the receipts poller."""
    metrics = MessagingMetrics(runtime.settings.service_name, runtime.metrics.registry)
    loops: list[Loop] = [
        SenderLoop(runtime, composer, sender_wakeup(runtime), metrics, handoff=handoff)
    ]
    receipts = receipt_loop(runtime)
    if receipts is not None:
        loops.append(receipts)
    return loops
