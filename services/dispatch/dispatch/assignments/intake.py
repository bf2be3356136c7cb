"""Intake of qualified leads (``lead.qualified.v1``): record the lead, its contact hashes and
whether the person objected to follow-ups, close it at once when it must not be routed, else
route it."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.assignments.closing import close_lead, is_vehicle_sold
from dispatch.assignments.offers import route
from dispatch.assignments.state import LEAD_UNASSIGNED
from dispatch.assignments.step import Step
from dispatch.directory.repository import schedule_of
from dispatch.models import DispatchLead
from dispatch.privacy.contacts import contact_hashes
from dispatch.privacy.repository import PrivacyRepository
from dispatch.routing.repository import PoolKey, forget_prefetched, remember_pools, remembers
from dispatch.routing.strategy import strategy_named
from dispatch.settings import DispatchSettings
from dispatch.webhooks.handoff import WebhookHandoff
from shared.consumer import Handler
from shared.events import Envelope
from shared.events.payloads import LeadQualifiedV1
from shared.runtime import Runtime


async def on_qualified(step: Step, payload: LeadQualifiedV1) -> DispatchLead:
    """Record a qualified lead and route it (idempotent on the lead id)."""
    hashes = contact_hashes(
        payload.contact, step.settings.privacy_hmac_key.get_secret_value().encode()
    )
    try:
        return await _take(step, payload, hashes)
    finally:
        forget_prefetched(step.session)  # a page read for this lead serves no other step


async def _take(step: Step, payload: LeadQualifiedV1, hashes: Sequence[str]) -> DispatchLead:
    # One read before anything is written: recorded already (a redelivery)? an objection? and
    # the lead's site (held by this frame so that routing finds it in the session), its
    # vehicle's stock row, its contact schedule, which the step then needs not read, and the
    # first page of the pool it will likely go to.
    probe = await step.assignments.intake_probe(
        payload.lead_id,
        hashes,
        site_id=payload.site,
        source=payload.source,
        ad_ref=payload.vehicle_ad_ref,
        page=_likely_pool(step, payload),
    )
    recorded, suppressed = probe.recorded, probe.suppressed
    if recorded:
        return await step.lead(payload.lead_id)
    if payload.vehicle_ad_ref is not None:
        step.known_vehicle(payload.vehicle_ad_ref, probe.vehicle)
    step.known_schedule(
        payload.source, payload.site, schedule_of(step.settings, probe.schedule, probe.site)
    )
    phone_consent = payload.consents.get("phone")
    lead = DispatchLead(
        lead_id=payload.lead_id,
        source=payload.source,
        channel=payload.channel,
        site_id=payload.site,
        vehicle_ad_ref=payload.vehicle_ad_ref,
        language=payload.language[:8],
        financing_wanted=payload.financing_wanted,
        do_not_contact=phone_consent is not None and not phone_consent.granted,
        followups_blocked=suppressed,
        qualification=payload.model_dump(mode="json"),
        status=LEAD_UNASSIGNED,
        seller_id=None,
        routed_to=None,
        escalated_at=None,
        escalation_reason=None,
        close_reason=None,
        received_at=payload.received_at,
        qualified_at=payload.qualified_at,
        updated_at=step.now,
    )
    if lead.do_not_contact:
        await _record(step, lead, hashes)
        await close_lead(step, lead, "do_not_contact")
    elif await is_vehicle_sold(step, lead.vehicle_ad_ref):
        await _record(step, lead, hashes)
        await close_lead(step, lead, "vehicle_sold")
    else:
        # Routing writes the lead once it has decided: offered, with its contact hashes and
        # its offer (no UPDATE after); escalated, alone (its hashes are written here).
        if await route(step, lead, new_lead=True, contact_keys=hashes) is None:
            await _record(step, lead, hashes)
    return lead


def _likely_pool(step: Step, payload: LeadQualifiedV1) -> PoolKey | None:
    """The pool (and order) the lead's routing will most likely read first, for the probe to
    read its first page along (``dispatch.routing.repository.prefetch``): its site's sellers in
    store (the probe reads the vehicle's site's instead when its vehicle is in stock), the
    full-web pool otherwise. None when it cannot tell (a strategy without a fixed order) or
    when this unit of work remembers that pool already (a batch's earlier lead read it)."""
    try:
        strategy = strategy_named(step.settings.routing_strategy)
    except KeyError:  # routing says so, when it routes (a closed lead needs no strategy)
        return None
    order = getattr(strategy, "order", None)
    if order is None:
        return None
    key: PoolKey
    if payload.channel != "in_store":
        key = ("full_web", None, tuple(order))
    elif payload.site is not None:
        key = ("in_store", payload.site, tuple(order))
    else:
        return None
    return None if remembers(step.session, key) else key


async def _record(step: Step, lead: DispatchLead, hashes: Sequence[str]) -> None:
    """The new lead written (unless routing wrote it), then its contact keys."""
    await step.assignments.write_if_new(lead)
    await PrivacyRepository(step.session).add_contact_keys(lead.lead_id, hashes)


def qualified_handler(
    runtime: Runtime[DispatchSettings], handoff: WebhookHandoff | None = None
) -> Handler:
    """The worker's handler of ``lead.qualified.v1`` (the runtime's settings, outbox, clock;
    ``handoff``: the worker's webhook sender, which its offers are claimed for at birth)."""
    settings, outbox, clock = runtime.settings, runtime.outbox, runtime.clock

    async def on_lead_qualified(session: AsyncSession, envelope: Envelope) -> None:
        payload = LeadQualifiedV1.model_validate(envelope.data)
        # The leads of a consumed batch share its unit of work: the pool pages one reads
        # serve the next ones (``dispatch.routing.repository``).
        remember_pools(session)
        await on_qualified(Step(session, settings, outbox, clock(), handoff), payload)

    return on_lead_qualified
