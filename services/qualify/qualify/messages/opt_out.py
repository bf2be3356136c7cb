"""A person asks qualify's messages to stop on one channel (an SMS STOP, an e-mail unsubscribe,
the one-click link): the channel is blocked for their addresses at once, what is still queued to
them is cancelled, and ``lead.opted-out.v1`` tells crm (which records the objection)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from qualify.messages import state
from qualify.messages.events import MessageRef, stage_opted_out, stage_status
from qualify.messages.repository import MessageRepository
from qualify.messages.service import contact_addresses
from qualify.models import QueuedLead
from qualify.suppression.service import block
from shared.events.payloads import MessageChannel, OptOutVia
from shared.outbox import Outbox

log = structlog.get_logger(__name__)


async def cancel_queued(
    session: AsyncSession,
    outbox: Outbox,
    channel: MessageChannel,
    addresses: Sequence[str],
    *,
    reason: str,
    now: datetime,
) -> int:
    """Cancel what is still queued to ``addresses`` on ``channel`` (not yet claimed)."""
    cancelled = 0
    for message in await MessageRepository.from_session(session).queued_to(channel, addresses):
        message.status = state.CANCELLED
        message.reason = reason
        message.finished_at = now
        await stage_status(
            session, outbox, MessageRef.of(message), "cancelled", reason=reason, at=now
        )
        cancelled += 1
    return cancelled


async def opt_out(
    session: AsyncSession,
    lead: QueuedLead,
    channel: MessageChannel,
    *,
    via: OptOutVia,
    also: Sequence[str] = (),
    key: bytes,
    outbox: Outbox,
    now: datetime,
) -> None:
    """Block ``channel`` for the lead's addresses (and ``also``: the number or address that
    wrote), cancel what is queued to them, announce it."""
    addresses = sorted({*contact_addresses(lead, channel), *also})
    await block(
        session,
        channel,
        addresses,
        reason="stop" if channel == "sms" else "unsubscribe",
        at=now,
        key=key,
    )
    cancelled = await cancel_queued(
        session, outbox, channel, addresses, reason="opted_out", now=now
    )
    await stage_opted_out(session, outbox, lead.lead_id, channel, via=via, at=now)
    log.info(
        "message.opted_out", lead_id=lead.lead_id, channel=channel, via=via, cancelled=cancelled
    )
