"""Settle a raw input with its parser outcomes, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from ingest.canonical import Ignore, LeadDraft, Outcome, Quarantine
from ingest.intake.schemas import IntakeOut, LeadRef
from ingest.leads.service import accept_draft
from ingest.models import QuarantinedInput, RawInput
from ingest.quarantine.repository import QuarantineRepository
from shared.outbox import Outbox


def _checked(outcome: Outcome) -> Outcome:
    if isinstance(outcome, LeadDraft):
        if outcome.kind == "enquiry" and not outcome.contact.reachable:
            return Quarantine("no_contact_details", f"{outcome.layout}: no e-mail or phone")
        if not outcome.source_ref.strip():
            return Quarantine("no_source_ref", outcome.layout)
    return outcome


async def quarantine(
    session: AsyncSession,
    raw: RawInput,
    reason: Quarantine,
    *,
    now: datetime,
    existing: QuarantinedInput | None = None,
    facebook_fetch_id: str | None = None,
) -> QuarantinedInput:
    if existing is None:
        existing = QuarantineRepository.from_session(session).add(
            raw, now=now, facebook_fetch_id=facebook_fetch_id
        )
    existing.reason = reason.reason[:120]
    existing.detail = (reason.detail or None) and reason.detail[:500]
    existing.status = "open"
    existing.updated_at = now
    raw.outcome = "quarantined"
    raw.reason = reason.reason[:120]
    await session.flush()
    return existing


async def settle(
    session: AsyncSession,
    raw: RawInput,
    outcomes: Sequence[Outcome],
    *,
    outbox: Outbox,
    now: datetime,
    existing: QuarantinedInput | None = None,
) -> IntakeOut:
    """The answer to ``raw``: its leads accepted (events staged in ``outbox``), else its
    quarantine entries, else the record of why it is ignored. ``existing``: the entry a retry
    re-parses."""
    checked = [_checked(outcome) for outcome in outcomes] or [Quarantine("no_outcome")]
    leads: list[LeadRef] = []
    quarantined: list[QuarantinedInput] = []
    for outcome in checked:
        if isinstance(outcome, LeadDraft):
            acceptance = await accept_draft(
                session, outcome, outbox=outbox, now=now, raw_input_id=raw.id
            )
            leads.append(
                LeadRef(
                    id=acceptance.lead_id,
                    status="duplicate" if acceptance.duplicate else "accepted",
                )
            )
    for outcome in checked:
        if isinstance(outcome, Quarantine):
            quarantined.append(
                await quarantine(
                    session, raw, outcome, now=now, existing=existing if not quarantined else None
                )
            )
    if leads:
        raw.outcome = "lead"
        raw.lead_id = leads[0].id
        raw.reason = None
        if existing is not None and existing not in quarantined:
            existing.status = "resolved"
            existing.lead_id = leads[0].id
            existing.updated_at = now
        return IntakeOut(
            status=leads[0].status,
            id=leads[0].id,
            raw_input_id=raw.id,
            leads=leads,
            quarantine_ids=[item.id for item in quarantined],
        )
    if quarantined:
        return IntakeOut(
            status="quarantined",
            id=quarantined[0].id,
            reason=quarantined[0].reason,
            raw_input_id=raw.id,
            quarantine_ids=[item.id for item in quarantined],
        )
    ignore = next(outcome for outcome in checked if isinstance(outcome, Ignore))
    record = QuarantineRepository.from_session(session).add_ignored(
        raw, reason=ignore.reason[:120], now=now
    )
    raw.outcome = "ignored"
    raw.reason = ignore.reason[:120]
    if existing is not None:
        existing.status = "ignored"
        existing.updated_at = now
    await session.flush()
    return IntakeOut(status="ignored", id=record.id, reason=record.reason, raw_input_id=raw.id)


async def replayed(session: AsyncSession, raw: RawInput) -> IntakeOut | None:
    """The answer already given for the same bytes (an IMAP re-read, a provider's retry)."""
    if raw.outcome == "lead" and raw.lead_id:
        return IntakeOut(
            status="duplicate",
            id=raw.lead_id,
            raw_input_id=raw.id,
            leads=[LeadRef(id=raw.lead_id, status="duplicate")],
        )
    entries = QuarantineRepository.from_session(session)
    if raw.outcome == "ignored":
        ignored = await entries.ignored_of(raw.id)
        if ignored is not None:
            return IntakeOut(
                status="ignored",
                id=ignored.id,
                reason=ignored.reason,
                raw_input_id=raw.id,
                lead_id=raw.lead_id,
            )
    if raw.outcome == "quarantined":
        held = await entries.open_of(raw.id)
        if held is not None:
            return IntakeOut(
                status="quarantined",
                id=held.id,
                reason=held.reason,
                raw_input_id=raw.id,
                quarantine_ids=[held.id],
            )
    return None
