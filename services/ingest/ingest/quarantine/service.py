"""Retrying a quarantined input: re-parse its raw bytes with today's parsers, or re-queue its
Graph API fetch."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from ingest.canonical import Outcome, Quarantine
from ingest.intake.schemas import IntakeOut
from ingest.intake.service import settle
from ingest.models import QuarantinedInput, RawInput
from ingest.quarantine.schemas import RetryOut, RetryStatus
from ingest.raw_inputs.repository import RawInputRepository
from ingest.sources.adf.parser import AdfSyntaxError, parse_adf
from ingest.sources.email.service import parse_email_async
from ingest.sources.facebook.fetcher import parse_graph_body
from ingest.sources.facebook.notifications import read_notification
from ingest.sources.facebook.repository import FacebookFetchRepository
from shared.errors import Conflict
from shared.outbox import Outbox


async def reparse(raw: RawInput) -> list[Outcome]:
    """Today's parsers on stored bytes; never raises."""
    try:
        if raw.channel in ("email", "imap"):
            return await parse_email_async(raw.body)
        if raw.channel == "api":
            return parse_adf(raw.body)
        if raw.channel == "facebook_graph":
            return [parse_graph_body(raw.body)]
        if raw.channel == "facebook":
            return list(read_notification(json.loads(raw.body)).messages)
    except AdfSyntaxError as exc:
        return [Quarantine("xml_not_well_formed", str(exc))]
    except Exception as exc:
        return [Quarantine("parser_error", type(exc).__name__)]
    return [Quarantine("no_parser_for_channel", raw.channel)]


async def retry(
    session: AsyncSession, held: QuarantinedInput, *, outbox: Outbox, now: datetime
) -> RetryOut:
    if held.status != "open":
        raise Conflict(f"This quarantine entry is {held.status}.")
    held.attempts += 1
    held.updated_at = now
    if held.facebook_fetch_id is not None:
        fetch = await FacebookFetchRepository.from_session(session).get(held.facebook_fetch_id)
        if fetch is None:
            raise Conflict("The Facebook fetch of this entry no longer exists.")
        fetch.status = "pending"
        fetch.attempts = 0
        fetch.next_attempt_at = now
        held.status = "resolved"
        return RetryOut(quarantine_id=held.id, status="requeued")
    raw = await RawInputRepository.from_session(session).get(held.raw_input_id)
    if raw is None:
        raise Conflict("The raw input of this entry was purged (retention).")
    answer = await settle(session, raw, await reparse(raw), outbox=outbox, now=now, existing=held)
    return RetryOut(
        quarantine_id=held.id,
        status=_retry_status(answer),
        reason=answer.reason,
        lead_ids=[lead.id for lead in answer.leads],
    )


def _retry_status(answer: IntakeOut) -> RetryStatus:
    """A lead resolves the entry, a known non-lead marks it ignored, anything else keeps it
    open (with the new reason)."""
    if answer.leads:
        return "resolved"
    return "ignored" if answer.status == "ignored" else "open"
