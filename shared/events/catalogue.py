"""The event catalogue: every versioned type, its topic, its payload model and whether it carries
personal data (which bounds the topic's retention)."""

from __future__ import annotations

import builtins
from dataclasses import dataclass

from shared.events.access import PersonChangedV1, TokenIssuedV1, TokenRevokedV1
from shared.events.payloads import (
    AssignmentAcceptedV1,
    AssignmentDeclinedV1,
    AssignmentEndedV1,
    AssignmentHandedBackV1,
    AssignmentOfferedV1,
    AssignmentReassignedV1,
    EventPayload,
    LeadAppointmentMissedV1,
    LeadAppointmentRescheduledV1,
    LeadAppointmentSetV1,
    LeadAssignedV1,
    LeadContactAttemptedV1,
    LeadContactedV1,
    LeadDisqualifiedV1,
    LeadEscalatedV1,
    LeadFollowupDueV1,
    LeadLostV1,
    LeadMessageBouncedV1,
    LeadMessageReceivedV1,
    LeadMessageSentV1,
    LeadMessageStatusChangedV1,
    LeadOptedOutV1,
    LeadQualifiedV1,
    LeadReceivedV1,
    LeadReopenedV1,
    LeadWonV1,
    LeadWonV2,
    SellerWebhookDisabledV1,
    SiteCalendarChangedV1,
)
from shared.events.privacy import (
    ClientRectifiedV1,
    ContactSuppressedV1,
    ErasureCompletedV1,
    ErasureRequestedV1,
    ExportProvidedV1,
    ExportRequestedV1,
)


class Topics:
    """Logical topic names; the bus adds the configured prefix. Key = lead id or client id
    (directory: site id; access: person id)."""

    LEADS = "vo.leads"
    PRIVACY = "vo.privacy"
    DIRECTORY = "vo.directory"  # reference data (sites' calendars): no personal data
    ACCESS = "vo.access"  # people and their tokens' hashes (staff names: bounded retention)

    @staticmethod
    def dlq(topic: str) -> str:
        return f"{topic}.dlq"


# Topics that carry personal data get the bounded retention of the settings.
PERSONAL_DATA_TOPICS: frozenset[str] = frozenset({Topics.LEADS, Topics.PRIVACY, Topics.ACCESS})


@dataclass(frozen=True)
class EventSpec:
    type: str
    topic: str
    payload: builtins.type[EventPayload]
    producer: str
    description: str
    personal_data: bool


CATALOGUE: dict[str, EventSpec] = {
    spec.type: spec
    for spec in (
        EventSpec(
            type="lead.received.v1",
            topic=Topics.LEADS,
            payload=LeadReceivedV1,
            producer="ingest",
            description="A canonical lead was accepted (any source); subject = lead id.",
            personal_data=True,
        ),
        EventSpec(
            type="privacy.erasure-requested.v1",
            topic=Topics.PRIVACY,
            payload=ErasureRequestedV1,
            producer="crm",
            description="Erase a client everywhere (lead ids, keyed hashes); subject = client id.",
            personal_data=False,
        ),
        EventSpec(
            type="privacy.erasure-completed.v1",
            topic=Topics.PRIVACY,
            payload=ErasureCompletedV1,
            producer="every service",
            description="One service erased its share (counts per store); subject = client id.",
            personal_data=False,
        ),
        EventSpec(
            type="privacy.contact-suppressed.v1",
            topic=Topics.PRIVACY,
            payload=ContactSuppressedV1,
            producer="crm",
            description="Do not contact these keyed hashes (objection); subject = first hash.",
            personal_data=False,
        ),
        EventSpec(
            type="privacy.export-requested.v1",
            topic=Topics.PRIVACY,
            payload=ExportRequestedV1,
            producer="crm",
            description="Send what you hold on these leads (Art. 15/20); subject = client id.",
            personal_data=False,
        ),
        EventSpec(
            type="privacy.export-provided.v1",
            topic=Topics.PRIVACY,
            payload=ExportProvidedV1,
            producer="every service",
            description="One service's share of a client's export; subject = client id.",
            personal_data=True,
        ),
        EventSpec(
            type="lead.contact-attempted.v1",
            topic=Topics.LEADS,
            payload=LeadContactAttemptedV1,
            producer="qualify",
            description="An operator called, texted or e-mailed the lead; subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="lead.qualified.v1",
            topic=Topics.LEADS,
            payload=LeadQualifiedV1,
            producer="qualify",
            description="An operator, or the direct routing policy, qualified the lead (whole "
            "qualification, path); subject = lead id.",
            personal_data=True,
        ),
        EventSpec(
            type="lead.disqualified.v1",
            topic=Topics.LEADS,
            payload=LeadDisqualifiedV1,
            producer="qualify",
            description="The lead was closed without qualification; subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="lead.message-sent.v1",
            topic=Topics.LEADS,
            payload=LeadMessageSentV1,
            producer="qualify",
            description="A message to the prospect was handed to SMTP or SMS; subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="lead.message-status-changed.v1",
            topic=Topics.LEADS,
            payload=LeadMessageStatusChangedV1,
            producer="qualify",
            description="A message was delivered, bounced, failed, cancelled…; subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="lead.message-received.v1",
            topic=Topics.LEADS,
            payload=LeadMessageReceivedV1,
            producer="ingest",
            description="The prospect replied (e-mail or SMS, text inside); subject = lead id.",
            personal_data=True,
        ),
        EventSpec(
            type="lead.message-bounced.v1",
            topic=Topics.LEADS,
            payload=LeadMessageBouncedV1,
            producer="ingest",
            description="One of qualify's e-mails bounced (hard or soft); subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="lead.opted-out.v1",
            topic=Topics.LEADS,
            payload=LeadOptedOutV1,
            producer="qualify",
            description="The prospect asked messages to stop on a channel; subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="lead.reopened.v1",
            topic=Topics.LEADS,
            payload=LeadReopenedV1,
            producer="qualify",
            description="A disqualified lead went back to the operators' queue (who, why); "
            "subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="assignment.offered.v1",
            topic=Topics.LEADS,
            payload=AssignmentOfferedV1,
            producer="dispatch",
            description="A lead was offered to a seller (accept deadline); subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="assignment.accepted.v1",
            topic=Topics.LEADS,
            payload=AssignmentAcceptedV1,
            producer="dispatch",
            description="The seller accepted the offer (first-contact due); subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="assignment.declined.v1",
            topic=Topics.LEADS,
            payload=AssignmentDeclinedV1,
            producer="dispatch",
            description="The seller declined the offer (reason); subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="assignment.expired.v1",
            topic=Topics.LEADS,
            payload=AssignmentEndedV1,
            producer="dispatch",
            description="The offer's accept deadline passed; subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="assignment.withdrawn.v1",
            topic=Topics.LEADS,
            payload=AssignmentEndedV1,
            producer="dispatch",
            description="An offer or assignment was withdrawn (vehicle sold…); subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="lead.assigned.v1",
            topic=Topics.LEADS,
            payload=LeadAssignedV1,
            producer="dispatch",
            description="The lead has an owner, the seller who accepted it; subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="lead.escalated.v1",
            topic=Topics.LEADS,
            payload=LeadEscalatedV1,
            producer="dispatch",
            description="Nobody can take the lead or first contact is overdue; subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="lead.contacted.v1",
            topic=Topics.LEADS,
            payload=LeadContactedV1,
            producer="dispatch",
            description="The seller contacted the prospect (channel); subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="lead.appointment-set.v1",
            topic=Topics.LEADS,
            payload=LeadAppointmentSetV1,
            producer="dispatch",
            description="The seller set an appointment with the prospect; subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="lead.won.v1",
            topic=Topics.LEADS,
            payload=LeadWonV1,
            producer="dispatch",
            description="The prospect bought; subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="lead.won.v2",
            topic=Topics.LEADS,
            payload=LeadWonV2,
            producer="dispatch",
            description="The prospect bought (sale price, site); subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="lead.lost.v1",
            topic=Topics.LEADS,
            payload=LeadLostV1,
            producer="dispatch",
            description="The lead was closed without a sale (reason); subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="lead.followup-due.v1",
            topic=Topics.LEADS,
            payload=LeadFollowupDueV1,
            producer="dispatch",
            description="A follow-up of the contact schedule is due; subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="assignment.reassigned.v1",
            topic=Topics.LEADS,
            payload=AssignmentReassignedV1,
            producer="dispatch",
            description="A manager moved the lead by hand (who, to whom, how); subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="assignment.handed-back.v1",
            topic=Topics.LEADS,
            payload=AssignmentHandedBackV1,
            producer="dispatch",
            description="The seller gave the lead back to routing (reason); subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="lead.appointment-rescheduled.v1",
            topic=Topics.LEADS,
            payload=LeadAppointmentRescheduledV1,
            producer="dispatch",
            description="The appointment moved to a new time; subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="lead.appointment-missed.v1",
            topic=Topics.LEADS,
            payload=LeadAppointmentMissedV1,
            producer="dispatch",
            description="The prospect did not come to the appointment; subject = lead id.",
            personal_data=False,
        ),
        EventSpec(
            type="site.calendar-changed.v1",
            topic=Topics.DIRECTORY,
            payload=SiteCalendarChangedV1,
            producer="dispatch",
            description="A site's (or the full-web pool's) whole calendar; subject = site id.",
            personal_data=False,
        ),
        EventSpec(
            type="privacy.client-rectified.v1",
            topic=Topics.PRIVACY,
            payload=ClientRectifiedV1,
            producer="crm",
            description="A client's corrected contact details (Art. 16); subject = client id.",
            personal_data=True,
        ),
        EventSpec(
            type="seller.webhook-disabled.v1",
            topic=Topics.LEADS,
            payload=SellerWebhookDisabledV1,
            producer="dispatch",
            description="A seller's webhook endpoint was disabled; subject = seller id.",
            personal_data=False,
        ),
        EventSpec(
            type="access.person-changed.v1",
            topic=Topics.ACCESS,
            payload=PersonChangedV1,
            producer="dispatch",
            description="A person of the directory, whole (name, roles, sites, active); "
            "subject = person id.",
            personal_data=True,
        ),
        EventSpec(
            type="access.token-issued.v1",
            topic=Topics.ACCESS,
            payload=TokenIssuedV1,
            producer="dispatch",
            description="A person's API token (its SHA-256 only); subject = person id.",
            personal_data=False,
        ),
        EventSpec(
            type="access.token-revoked.v1",
            topic=Topics.ACCESS,
            payload=TokenRevokedV1,
            producer="dispatch",
            description="A person's API token stops working everywhere; subject = person id.",
            personal_data=False,
        ),
    )
}


def spec_for(event_type: str) -> EventSpec:
    try:
        return CATALOGUE[event_type]
    except KeyError:
        raise KeyError(f"unknown event type {event_type!r}") from None


def all_topics() -> list[str]:
    """Every topic of the catalogue, with its DLQ."""
    topics = sorted({spec.topic for spec in CATALOGUE.values()} | PERSONAL_DATA_TOPICS)
    return topics + [Topics.dlq(topic) for topic in topics]
