"""Taking in one raw e-mail (HTTP or IMAP): store, classify and parse, settle."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from ingest.canonical import Outcome
from ingest.intake.schemas import IntakeOut
from ingest.intake.service import replayed, settle
from ingest.raw_inputs.repository import RawInputRepository
from ingest.sources.email.classifier import parse_email
from shared.outbox import Outbox

EMAIL_CHANNELS = ("email", "imap")
_THREAD_ABOVE_BYTES = 256 * 1024


async def parse_email_async(raw: bytes) -> list[Outcome]:
    """Large messages are parsed in a thread so the event loop keeps serving."""
    if len(raw) > _THREAD_ABOVE_BYTES:
        return await asyncio.to_thread(parse_email, raw)
    return parse_email(raw)


async def take_email(
    session: AsyncSession, body: bytes, *, channel: str, outbox: Outbox, now: datetime
) -> IntakeOut:
    repository = RawInputRepository.from_session(session)
    twin = await repository.settled_twin(channels=EMAIL_CHANNELS, body=body)
    if twin is not None:
        answer = await replayed(session, twin)
        if answer is not None:
            return answer
    raw = await repository.store(
        channel=channel, content_type="message/rfc822", body=body, received_at=now
    )
    return await settle(session, raw, await parse_email_async(body), outbox=outbox, now=now)
