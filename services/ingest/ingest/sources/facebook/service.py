"""Taking in one signed webhook notification: Lead Ads ids staged for the Graph API fetcher,
Messenger messages settled at once, parts of an unexpected shape quarantined (the readable ones
are still taken; a retry after a parser fix stages and settles again, idempotently)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from ingest.canonical import Ignore, Outcome
from ingest.intake.schemas import IntakeOut
from ingest.intake.service import settle
from ingest.raw_inputs.repository import RawInputRepository
from ingest.sources.facebook.notifications import Notification, read_notification
from ingest.sources.facebook.repository import FacebookFetchRepository
from shared.outbox import Outbox


async def take_notification(
    session: AsyncSession, body: bytes, document: object, *, outbox: Outbox, now: datetime
) -> IntakeOut:
    """Keep the notification's bytes, stage a fetch per new ``leadgen_id``, settle Messenger
    messages at once (``document``: ``body`` parsed, its signature already checked)."""
    raw = await RawInputRepository.from_session(session).store(
        channel="facebook", content_type="application/json", body=body, received_at=now
    )
    parsed = read_notification(document)
    staged = await stage_fetches(session, parsed, raw_input_id=raw.id, now=now)
    outcomes = outcomes_to_settle(parsed)
    if outcomes:
        answer = await settle(session, raw, outcomes, outbox=outbox, now=now)
        answer.pending_fetches = staged
        return answer
    if parsed.leadgen:
        raw.outcome = "fetching"
        return IntakeOut(status="pending", raw_input_id=raw.id, pending_fetches=staged)
    ignores = [o for o in parsed.messages if isinstance(o, Ignore)]
    return await settle(
        session, raw, ignores[:1] or [Ignore("no_lead_in_notification")], outbox=outbox, now=now
    )


async def stage_fetches(
    session: AsyncSession, parsed: Notification, *, raw_input_id: str, now: datetime
) -> int:
    """A Graph API fetch per ``leadgen_id`` not staged before; how many are new."""
    fetches = FacebookFetchRepository.from_session(session)
    staged = 0
    for ref in parsed.leadgen:
        staged += await fetches.stage(ref, raw_input_id=raw_input_id, now=now)
    return staged


def outcomes_to_settle(parsed: Notification) -> list[Outcome]:
    """The Messenger leads, and the quarantine of the parts of an unexpected shape."""
    outcomes: list[Outcome] = [o for o in parsed.messages if not isinstance(o, Ignore)]
    malformed = parsed.quarantine()
    if malformed is not None:
        outcomes.append(malformed)
    return outcomes
