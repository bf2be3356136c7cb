"""The events of a message's life, staged in the transaction that changes it (ids, channel,
kind, status, times: never an address or a body)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from qualify.models import OutgoingMessage
from shared.events.payloads import (
    LeadMessageSentV1,
    LeadMessageStatusChangedV1,
    LeadOptedOutV1,
    MessageChannel,
    MessageKind,
    MessageOutcome,
    OptOutVia,
)
from shared.outbox import Outbox, event_row


@dataclass(frozen=True)
class MessageRef:
    """What the events say of a message."""

    message_id: str
    lead_id: str
    channel: MessageChannel
    kind: MessageKind
    operator_id: str | None
    attempt_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, message: OutgoingMessage) -> MessageRef:
        return cls(
            message_id=message.id,
            lead_id=message.lead_id,
            channel=message.channel,
            kind=message.kind,
            operator_id=message.operator_id,
            attempt_id=message.attempt_id,
            created_at=message.created_at,
        )


def _sent(ref: MessageRef, sent_at: datetime) -> LeadMessageSentV1:
    return LeadMessageSentV1(
        lead_id=ref.lead_id,
        message_id=ref.message_id,
        channel=ref.channel,
        kind=ref.kind,
        operator_id=ref.operator_id,
        attempt_id=ref.attempt_id,
        created_at=ref.created_at,
        sent_at=sent_at,
    )


def _status(
    ref: MessageRef, status: MessageOutcome, reason: str | None, at: datetime
) -> LeadMessageStatusChangedV1:
    return LeadMessageStatusChangedV1(
        lead_id=ref.lead_id,
        message_id=ref.message_id,
        channel=ref.channel,
        kind=ref.kind,
        status=status,
        reason=reason,
        changed_at=at,
    )


def sent_row(outbox: Outbox, ref: MessageRef, *, sent_at: datetime) -> dict[str, Any]:
    """The outbox row of ``stage_sent``, for a statement that writes it with the outcome
    (``MessageRepository.update_claimed_staging``)."""
    return event_row(
        source=outbox.source,
        event_type="lead.message-sent.v1",
        subject=ref.lead_id,
        payload=_sent(ref, sent_at),
    )


def status_row(
    outbox: Outbox, ref: MessageRef, status: MessageOutcome, *, reason: str | None, at: datetime
) -> dict[str, Any]:
    """The outbox row of ``stage_status`` (see ``sent_row``)."""
    return event_row(
        source=outbox.source,
        event_type="lead.message-status-changed.v1",
        subject=ref.lead_id,
        payload=_status(ref, status, reason, at),
    )


async def stage_sent(
    session: AsyncSession, outbox: Outbox, ref: MessageRef, *, sent_at: datetime
) -> None:
    await outbox.stage(session, "lead.message-sent.v1", ref.lead_id, _sent(ref, sent_at))


async def stage_status(
    session: AsyncSession,
    outbox: Outbox,
    ref: MessageRef,
    status: MessageOutcome,
    *,
    reason: str | None,
    at: datetime,
) -> None:
    await outbox.stage(
        session, "lead.message-status-changed.v1", ref.lead_id, _status(ref, status, reason, at)
    )


async def stage_opted_out(
    session: AsyncSession,
    outbox: Outbox,
    lead_id: str,
    channel: MessageChannel,
    *,
    via: OptOutVia,
    at: datetime,
) -> None:
    await outbox.stage(
        session,
        "lead.opted-out.v1",
        lead_id,
        LeadOptedOutV1(lead_id=lead_id, channel=channel, via=via, opted_out_at=at),
    )
