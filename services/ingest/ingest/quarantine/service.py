"""Retrying a quarantined input: re-parse its raw bytes with today's parsers, or re-queue its
Graph API fetch."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from ingest.canonical import Ignore, Outcome, Quarantine
from ingest.intake.schemas import IntakeOut
from ingest.intake.service import settle
from ingest.models import QuarantinedInput, RawInput
from ingest.quarantine.schemas import RetryOut
from ingest.raw_inputs.repository import RawInputRepository
from ingest.sources.adf.parser import AdfSyntaxError, parse_adf
from ingest.sources.email.mime import MimeLimits
from ingest.sources.email.service import parse_email_async
from ingest.sources.facebook.fetcher import parse_graph_body
from ingest.sources.facebook.notifications import read_notification
from ingest.sources.facebook.repository import FacebookFetchRepository
from ingest.sources.facebook.service import outcomes_to_settle, stage_fetches
from shared.errors import Conflict
from shared.outbox import Outbox


async def reparse(raw: RawInput, limits: MimeLimits) -> list[Outcome]:
    """Today's parsers (and e-mail limits) on stored bytes; never raises."""
    try:
        if raw.channel in ("email", "imap"):
            return await parse_email_async(raw.body, limits)
        if raw.channel == "api":
            return parse_adf(raw.body)
        if raw.channel == "facebook_graph":
            return [parse_graph_body(raw.body)]
    except AdfSyntaxError as exc:
        return [Quarantine("xml_not_well_formed", str(exc))]
    except Exception as exc:
        return [Quarantine("parser_error", type(exc).__name__)]
    return [Quarantine("no_parser_for_channel", raw.channel)]


async def retry(
    session: AsyncSession,
    held: QuarantinedInput,
    *,
    limits: MimeLimits,
    outbox: Outbox,
    now: datetime,
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
    if raw.channel == "facebook":
        return await _retry_notification(session, held, raw, outbox=outbox, now=now)
    outcomes = await reparse(raw, limits)
    answer = await settle(session, raw, outcomes, outbox=outbox, now=now, existing=held)
    return _retried(held, answer)


async def _retry_notification(
    session: AsyncSession,
    held: QuarantinedInput,
    raw: RawInput,
    *,
    outbox: Outbox,
    now: datetime,
) -> RetryOut:
    """A webhook notification read again: its Lead Ads ids staged (those staged before are
    known), its Messenger messages settled (replays are duplicates), what is still of an
    unexpected shape kept in quarantine."""
    try:
        document = json.loads(raw.body)
    except (ValueError, RecursionError):
        document = None
    parsed = read_notification(document)
    await stage_fetches(session, parsed, raw_input_id=raw.id, now=now)
    outcomes = outcomes_to_settle(parsed)
    if not outcomes and parsed.leadgen:
        held.status = "resolved"
        raw.outcome = "fetching"
        raw.reason = None
        return RetryOut(quarantine_id=held.id, status="requeued")
    if not outcomes:
        ignores: list[Outcome] = [o for o in parsed.messages if isinstance(o, Ignore)]
        outcomes = ignores[:1] or [Ignore("no_lead_in_notification")]
    answer = await settle(session, raw, outcomes, outbox=outbox, now=now, existing=held)
    return _retried(held, answer)


def _retried(held: QuarantinedInput, answer: IntakeOut) -> RetryOut:
    """The entry's state after its retry: ``resolved`` by a lead, ``ignored`` for a known
    non-lead, else still ``open`` (with the new reason) — also when the input gave a lead and
    still holds a part that cannot be read (an ADF document, a webhook notification)."""
    return RetryOut(
        quarantine_id=held.id,
        status=held.status,
        reason=held.reason if held.status == "open" else answer.reason,
        lead_ids=[lead.id for lead in answer.leads],
    )
