"""The automatic first answer to a new lead: one e-mail (to the lead's address, or the
marketplace's relay) and, to a mobile number, one SMS, saying when the dealer will call.

Decided in the transaction that queues the lead (``lead.received.v1``, a new lead only: a replay
queues nothing), at any hour: it answers the person's own request, which is not canvassing. Never
to a person on the do-not-contact list, nor on a channel they blocked (STOP, unsubscribe, hard
bounce); never twice for one lead (``dedupe_key``: one row per lead, kind and channel, whatever
retries, restarts and replicas do).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from qualify.config_cache import ConfigView
from qualify.messages.channels import Job
from qualify.messages.compose import Composer, facts_of
from qualify.messages.handoff import SenderHandoff
from qualify.messages.repository import MessageRepository
from qualify.messages.service import contact_addresses, destination, new_message
from qualify.models import OutgoingMessage, QueuedLead
from qualify.settings import QualifySettings
from qualify.suppression.repository import ContactBlocks
from qualify.suppression.service import address_hash, contact_blocks, lead_hashes
from qualify.templates.defaults import DEFAULTS
from qualify.templates.service import pick, resolve_channels
from shared.errors import InvalidRequest
from shared.events.payloads import MessageChannel

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class FirstAnswerContacts:
    """Where a lead's first answer would go, and the hashes the lists know it by."""

    destinations: dict[MessageChannel, str]
    addresses: dict[MessageChannel, list[str]]  # the hashes of each channel's addresses
    suppressed: list[str]  # the hashes of the person (the do-not-contact list)

    @property
    def blocked(self) -> list[str]:
        return [digest for hashes in self.addresses.values() for digest in hashes]


# What the lists said of a lead's ``FirstAnswerContacts``.
CheckedContacts = tuple[FirstAnswerContacts, ContactBlocks]


def first_answer_contacts(settings: QualifySettings, lead: QueuedLead) -> FirstAnswerContacts:
    """What the first answer of ``lead`` checks, before anything is read (the worker's handler
    checks the lists in the statement that inserts the lead)."""
    key = settings.privacy_hmac_key.get_secret_value().encode()
    wanted: list[MessageChannel] = []
    if settings.message_first_answer_email:
        wanted.append("email")
    if settings.message_first_answer_sms:
        wanted.append("sms")
    destinations = {
        channel: to for channel in wanted if (to := destination(lead, channel)) is not None
    }
    addresses = {
        channel: [address_hash(address, key) for address in contact_addresses(lead, channel)]
        for channel in destinations
    }
    return FirstAnswerContacts(destinations, addresses, lead_hashes(lead, key))


async def schedule_first_answer(
    session: AsyncSession,
    composer: Composer,
    lead: QueuedLead,
    *,
    now: datetime,
    handoff: SenderHandoff | None = None,
    config: ConfigView | None = None,
    checked: CheckedContacts | None = None,
) -> list[OutgoingMessage]:
    """Queue the first answer of ``lead``; the rows this call wrote (none when it was already
    decided, or nothing may be sent). With ``handoff`` (this process runs a sender), each row
    is inserted claimed by that sender, which sends it once this transaction committed. With
    ``config`` (the new lead's handler), the templates are the cached ones while valid; with
    ``checked``, the lists were read already (by the statement that inserted the lead)."""
    settings = composer.settings
    if checked is None:
        contacts = first_answer_contacts(settings, lead)
        # The do-not-contact list and every channel block, in one statement.
        blocks = await contact_blocks(
            session, suppressed=contacts.suppressed, blocked=contacts.blocked
        )
    else:
        contacts, blocks = checked
    destinations, addresses = contacts.destinations, contacts.addresses
    if blocks.suppressed:
        log.info("first_answer.skipped", lead_id=lead.lead_id, reason="suppressed")
        return []
    channels: list[MessageChannel] = []
    for channel in destinations:
        if blocks.blocked_on(channel, addresses[channel]):
            log.info(
                "first_answer.skipped", lead_id=lead.lead_id, channel=channel, reason="blocked"
            )
        else:
            channels.append(channel)
    if not channels:
        return []
    if config is None:
        templates = await resolve_channels(
            session, "first_answer", channels, site=lead.site, source=lead.source
        )
    else:
        rows = await config.template_rows(session, "first_answer")
        templates = pick(rows, "first_answer", channels, site=lead.site, source=lead.source)
    decided: list[tuple[OutgoingMessage, Job | None]] = []
    for channel in channels:
        to = destinations[channel]
        try:
            composed = await composer.compose(
                session,
                kind="first_answer",
                channel=channel,
                lead_id=lead.lead_id,
                facts=facts_of(lead),
                site=lead.site,
                source=lead.source,
                now=now,
                template=templates[channel],
            )
        except InvalidRequest:
            # An override that no longer checks (saved before a variable was retired) must not
            # hold the lead back: the built-in default answers instead.
            log.warning("first_answer.template_invalid", lead_id=lead.lead_id, channel=channel)
            composed = await composer.compose(
                session,
                kind="first_answer",
                channel=channel,
                lead_id=lead.lead_id,
                facts=facts_of(lead),
                site=lead.site,
                source=lead.source,
                now=now,
                content=DEFAULTS[("first_answer", channel)],
            )
        message = new_message(
            composer,
            lead,
            composed,
            kind="first_answer",
            channel=channel,
            to=to,
            now=now,
            valid_for=timedelta(minutes=settings.message_first_answer_valid_minutes),
            unique=True,
        )
        decided.append((message, handoff.claim(message, now) if handoff is not None else None))
    # Every channel's row in one statement; a row whose dedupe_key exists is not inserted. A
    # row left queued wakes this process's sender, unless one runs here: it would have claimed
    # it already, so its channel cannot leave from here and the pass would find nothing.
    queued = any(job is None for _, job in decided)
    inserted = await MessageRepository.from_session(session).add_all_once(
        [message for message, _ in decided],
        wake=queued and (handoff is None or not handoff.attached),
    )
    written: list[OutgoingMessage] = []
    for message, job in decided:
        if message.id not in inserted:
            continue
        written.append(message)
        if handoff is not None and job is not None:
            handoff.start_after_commit(session, job)
    if written:
        log.info(
            "first_answer.queued",
            lead_id=lead.lead_id,
            channels=[message.channel for message in written],
        )
    return written
