"""SMS delivery receipts: pushed by the provider to our callback, or asked of it. A receipt moves
a sent message to ``delivered`` or ``failed`` (not delivered), once."""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from qualify.messages import state
from qualify.messages.events import MessageRef, stage_status
from qualify.messages.repository import MessageRepository
from shared.db.session import SessionFactory, session_scope
from shared.messaging.sms.provider import DeliveryReceipt, SmsProvider
from shared.outbox import Outbox
from shared.redact import safe_error_text

log = structlog.get_logger(__name__)

# Receipts are asked for this long after sending (the provider's validity period is 48 h).
RECEIPT_WINDOW = timedelta(days=2)
_RECEIPT_GRACE = timedelta(seconds=60)


async def apply_receipt(
    session: AsyncSession, receipt: DeliveryReceipt, *, outbox: Outbox, now: datetime
) -> bool:
    """Record ``receipt``; True when it changed the message's status."""
    message = await MessageRepository.from_session(session).by_provider_id(
        "sms", receipt.provider_message_id
    )
    if message is None:
        return False
    message.receipt_checked_at = now
    if message.status not in (state.SENT, state.UNCONFIRMED):
        return False  # already final (a receipt pushed and asked, or twice)
    at = receipt.at or now
    if receipt.state == "delivered":
        message.status = state.DELIVERED
        message.delivered_at = at
        message.finished_at = at
        await stage_status(session, outbox, MessageRef.of(message), "delivered", reason=None, at=at)
    elif receipt.state == "failed":
        message.status = state.FAILED
        message.reason = "not_delivered"
        message.last_error = f"provider receipt {receipt.code}"
        message.finished_at = at
        await stage_status(
            session, outbox, MessageRef.of(message), "failed", reason="not_delivered", at=at
        )
    else:
        return False  # accepted or buffered: still on its way
    log.info("message.receipt", message_id=message.id, status=message.status, code=receipt.code)
    return True


class ReceiptPoller:
    """Asks the provider for the receipts of sent SMS that have none yet (every ``interval``)."""

    def __init__(
        self,
        session_factory: SessionFactory,
        provider: SmsProvider,
        *,
        outbox: Outbox,
        interval: timedelta,
        batch_size: int = 50,
    ) -> None:
        self._sessions = session_factory
        self._provider = provider
        self._outbox = outbox
        self._interval = interval
        self._batch_size = batch_size

    async def poll_once(self, now: datetime) -> int:
        if not self._provider.configured:
            return 0
        async with session_scope(self._sessions) as session:
            waiting = await MessageRepository.from_session(session).sms_awaiting_receipt(
                sent_after=now - RECEIPT_WINDOW,
                sent_before=now - _RECEIPT_GRACE,
                checked_before=now - self._interval,
                limit=self._batch_size,
            )
            ids = [
                message.provider_message_id for message in waiting if message.provider_message_id
            ]
        changed = 0
        for provider_id in ids:
            try:
                receipt = await self._provider.fetch_delivery_receipt(provider_id)
            except Exception as exc:
                log.warning("message.receipt_unavailable", error=safe_error_text(exc))
                continue
            async with session_scope(self._sessions) as session:
                changed += await apply_receipt(session, receipt, outbox=self._outbox, now=now)
        return changed


class ReceiptCallback:
    """The provider's calls to our delivery-receipt URL: they carry no signature, so the URL
    holds a secret (``QUALIFY_MESSAGE_SMS_RECEIPT_SECRET``)."""

    def __init__(self, provider: SmsProvider, secret: str | None) -> None:
        self.provider = provider
        self._secret = secret

    def accepts(self, secret: str) -> bool:
        return self._secret is not None and hmac.compare_digest(
            secret.encode(), self._secret.encode()
        )
