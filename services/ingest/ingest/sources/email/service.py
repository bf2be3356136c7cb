"""Taking in one raw e-mail (HTTP or IMAP): a message of a lead's conversation (a reply, a
bounce) is recorded as such; anything else is stored, classified and parsed, settled."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from ingest.canonical import Outcome
from ingest.conversations.email import ConversationMail, read_conversation_mail
from ingest.conversations.service import take_conversation_email
from ingest.intake.schemas import IntakeOut
from ingest.intake.service import replayed, settle
from ingest.raw_inputs.repository import RawInputRepository
from ingest.sources.email.classifier import parse_email
from ingest.sources.email.mime import MimeLimits
from shared.messaging.lead_tokens import LeadTokens
from shared.outbox import Outbox

EMAIL_CHANNELS = ("email", "imap")
_THREAD_ABOVE_BYTES = 256 * 1024


async def parse_email_async(raw: bytes, limits: MimeLimits) -> list[Outcome]:
    """Large messages are parsed in a thread so the event loop keeps serving."""
    if len(raw) > _THREAD_ABOVE_BYTES:
        return await asyncio.to_thread(parse_email, raw, limits)
    return parse_email(raw, limits)


async def read_conversation_mail_async(
    raw: bytes, tokens: LeadTokens, limits: MimeLimits
) -> ConversationMail | None:
    if len(raw) > _THREAD_ABOVE_BYTES:
        return await asyncio.to_thread(read_conversation_mail, raw, tokens, limits)
    return read_conversation_mail(raw, tokens, limits)


async def take_email(
    session: AsyncSession,
    body: bytes,
    *,
    channel: str,
    tokens: LeadTokens,
    limits: MimeLimits,
    outbox: Outbox,
    now: datetime,
) -> IntakeOut:
    repository = RawInputRepository.from_session(session)
    twin = await repository.settled_twin(channels=EMAIL_CHANNELS, body=body)
    if twin is not None:
        answer = await replayed(session, twin)
        if answer is not None:
            return answer
    # Before any lead parser: a reply or a bounce must never become a lead (nor quarantine).
    found = await read_conversation_mail_async(body, tokens, limits)
    if found is not None:
        answer = await take_conversation_email(
            session, body, found, channel=channel, outbox=outbox, now=now
        )
        if answer is not None:
            return answer
    raw = await repository.store(
        channel=channel, content_type="message/rfc822", body=body, received_at=now
    )
    outcomes = await parse_email_async(body, limits)
    return await settle(session, raw, outcomes, outbox=outbox, now=now)
