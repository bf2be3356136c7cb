"""Payload models of the events (the ``data`` of the envelope). One class per versioned type.

A new version is a new class: consumers keep reading the old one until producers stop sending it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LeadSource = Literal["facebook", "leboncoin", "lacentrale", "email", "adf", "api"]
LeadKind = Literal["enquiry", "message"]


class EventPayload(BaseModel):
    # Tolerant reader: a consumer ignores fields it does not know, so adding an optional field
    # keeps the version (docs/conventions.md); the producer's own model is what validates.
    model_config = ConfigDict(extra="ignore", frozen=True)


class ContactV1(EventPayload):
    first_name: str | None = None
    last_name: str | None = None
    full_name: str | None = None
    email: str | None = Field(default=None, description="Case-folded e-mail address.")
    phone: str | None = Field(default=None, description="E.164 phone number.")


class VehicleV1(EventPayload):
    ad_ref: str | None = None
    url: str | None = None
    make: str | None = None
    model: str | None = None
    year: int | None = None
    price_eur: int | None = None
    mileage_km: int | None = None


class LeadReceivedV1(EventPayload):
    """A canonical lead accepted by ingest. Carries personal data (contact, message)."""

    lead_id: str
    kind: LeadKind
    source: LeadSource
    source_ref: str
    received_at: datetime
    contact: ContactV1
    vehicle: VehicleV1
    message: str | None = None
    relay_email: str | None = Field(
        default=None,
        description="A marketplace's relay address (La Centrale, Leboncoin messaging): it "
        "reaches the buyer but identifies nobody, so it is never used as an identity key. "
        "Answers to the lead go there. Optional, added after v1 was first published.",
    )


# --- qualify: the digital operators' work -------------------------------------------------

ContactChannel = Literal["phone", "sms", "email"]
AttemptOutcome = Literal["no_answer", "voicemail", "reached", "wrong_number", "refused"]
QualificationIntent = Literal["buy", "trade_in", "financing", "info"]
SalesChannel = Literal["in_store", "full_web"]
DisqualificationReason = Literal[
    "spam", "duplicate", "unreachable", "not_interested", "vehicle_sold", "wrong_contact"
]
RoutingPath = Literal["qualify", "direct"]
# The operator_id of a machine qualification (direct routing): not a token id.
DIRECT_ROUTING_OPERATOR = "routing:direct"
ReopenReason = Literal["disqualified_by_mistake", "prospect_came_back", "not_a_duplicate", "other"]


class LeadContactAttemptedV1(EventPayload):
    """An operator called, texted or e-mailed the lead's contact (no note: free text stays in
    qualify)."""

    lead_id: str
    attempt_id: str
    operator_id: str = Field(description="Id of the operator's token, never a name.")
    channel: ContactChannel
    outcome: AttemptOutcome
    attempted_at: datetime
    exemption: str | None = Field(
        default=None, description="Why a call outside the legal hours was allowed, if it was."
    )


class BudgetV1(EventPayload):
    min_eur: int | None = None
    max_eur: int | None = None


class TradeInV1(EventPayload):
    make: str | None = None
    model: str | None = None
    year: int | None = None
    mileage_km: int | None = None
    registration: str | None = None


class ContactSlotV1(EventPayload):
    day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    start: str = Field(description="Local time HH:MM (Europe/Paris).")
    end: str = Field(description="Local time HH:MM (Europe/Paris).")


class ConsentV1(EventPayload):
    """A marketing consent of one channel and its proof."""

    granted: bool
    at: datetime
    wording: str = Field(description="The exact text the consumer agreed to or refused.")
    collected_via: Literal["phone_call", "web_form", "email", "sms", "in_person"]


class LeadQualifiedV1(EventPayload):
    """The whole qualification of a lead. Carries personal data (contact, trade-in, notes).

    ``path`` says how: ``qualify`` (an operator qualified it) or ``direct`` (the routing policy
    of its source or site sent it to dispatch at receipt: a machine qualification whose
    ``operator_id`` is ``DIRECT_ROUTING_OPERATOR``)."""

    lead_id: str
    source: LeadSource
    received_at: datetime
    qualified_at: datetime
    operator_id: str = Field(
        description="Id of the operator's token, never a name; on the direct path the machine "
        "id 'routing:direct'."
    )
    path: RoutingPath = Field(
        default="qualify",
        description="qualify: qualified by an operator; direct: qualified by the routing policy "
        "at receipt, without an operator (absent from events published before it existed).",
    )
    contact: ContactV1
    intent: QualificationIntent
    channel: SalesChannel
    site: str | None = None
    vehicle_ad_ref: str | None = None
    budget: BudgetV1 | None = None
    trade_in: TradeInV1 | None = None
    financing_wanted: bool = False
    preferred_contact_slots: list[ContactSlotV1] = Field(default_factory=list)
    language: str = "fr"
    consents: dict[ContactChannel, ConsentV1] = Field(default_factory=dict)
    notes: str | None = None


class LeadDisqualifiedV1(EventPayload):
    """An operator (or the unreachable rule) closed the lead without qualification."""

    lead_id: str
    reason: DisqualificationReason
    duplicate_of: str | None = Field(
        default=None, description="The lead this one duplicates (merged into it)."
    )
    disqualified_at: datetime
    operator_id: str | None = Field(
        default=None, description="Id of the operator's token; None when a rule decided."
    )
    automatic: bool = False


class LeadReopenedV1(EventPayload):
    """A disqualified lead went back to the operators' queue (a mistake corrected)."""

    lead_id: str
    reopened_at: datetime
    operator_id: str = Field(description="Id of the token of who reopened it, never a name.")
    reason: ReopenReason
    previous_reason: DisqualificationReason = Field(
        description="The disqualification reason it had."
    )
    due_at: datetime = Field(description="When its next contact is due.")


# -- dispatch (issue 5): ids, times and reasons only, no personal data -----------------------

DeclineReason = Literal["busy", "not_my_skill", "absent", "other"]
LostReason = Literal[
    "not_interested", "bought_elsewhere", "unreachable", "vehicle_sold", "do_not_contact", "other"
]
EscalationReason = Literal["no_seller_available", "first_contact_overdue"]
HandBackReason = Literal["absent", "overloaded", "not_my_skill", "wrong_site", "other"]
# How a manager moved a lead: offered to the chosen seller (who accepts or declines), assigned to
# them directly (they hold it at once), or sent back to routing.
ManualMode = Literal["offer", "direct", "routing"]
ManualReason = Literal["manager_choice", "absence"]


class AssignmentOfferedV1(EventPayload):
    """Dispatch offered a lead to a seller, who must accept before ``accept_due_at``."""

    lead_id: str
    assignment_id: str
    seller_id: str
    site_id: str | None = None
    offered_at: datetime
    accept_due_at: datetime
    strategy: str = Field(description="Name of the routing strategy that chose the seller.")


class AssignmentAcceptedV1(EventPayload):
    """The seller accepted the offer; first contact is due by ``first_contact_due_at``."""

    lead_id: str
    assignment_id: str
    seller_id: str
    accepted_at: datetime
    first_contact_due_at: datetime


class AssignmentDeclinedV1(EventPayload):
    """The seller declined the offer; the lead is routed to the next seller."""

    lead_id: str
    assignment_id: str
    seller_id: str
    declined_at: datetime
    reason: DeclineReason


class AssignmentEndedV1(EventPayload):
    """An offer expired (``assignment.expired.v1``) or was withdrawn (``assignment.withdrawn.v1``,
    e.g. the vehicle was sold or the lead asked not to be contacted)."""

    lead_id: str
    assignment_id: str
    seller_id: str
    ended_at: datetime
    reason: str = Field(description="expired, vehicle_sold, do_not_contact…")


class LeadAssignedV1(EventPayload):
    """The lead has an owner: the seller who accepted it."""

    lead_id: str
    assignment_id: str
    seller_id: str
    site_id: str | None = None
    assigned_at: datetime


class LeadEscalatedV1(EventPayload):
    """Nobody can take the lead now, or its first contact is overdue: managers must act."""

    lead_id: str
    reason: EscalationReason
    site_id: str | None = None
    assignment_id: str | None = None
    escalation_target: str | None = Field(
        default=None, description="Seller id of the manager alerted (None: the board only)."
    )
    escalated_at: datetime


class LeadContactedV1(EventPayload):
    """The seller reports the first (or a new) contact with the prospect."""

    lead_id: str
    assignment_id: str
    seller_id: str
    channel: ContactChannel
    contacted_at: datetime


class LeadAppointmentSetV1(EventPayload):
    """An appointment with the prospect was set (at a site)."""

    lead_id: str
    assignment_id: str
    seller_id: str
    appointment_at: datetime
    site_id: str | None = None
    set_at: datetime


class LeadWonV1(EventPayload):
    """The prospect bought: the lead is won."""

    lead_id: str
    assignment_id: str
    seller_id: str
    vehicle_ad_ref: str | None = None
    won_at: datetime


class LeadWonV2(EventPayload):
    """The prospect bought: the lead is won, with the sale price when the seller gave it.
    Replaces ``lead.won.v1`` (same fields plus ``sale_price_eur``)."""

    lead_id: str
    assignment_id: str
    seller_id: str
    site_id: str | None = None
    vehicle_ad_ref: str | None = None
    sale_price_eur: int | None = Field(
        default=None, description="Sale price in whole euros, taxes included; None: not given."
    )
    won_at: datetime


class LeadLostV1(EventPayload):
    """The lead is closed without a sale (by its seller, or because the vehicle was sold)."""

    lead_id: str
    assignment_id: str | None = None
    seller_id: str | None = None
    reason: LostReason
    lost_at: datetime


class LeadFollowupDueV1(EventPayload):
    """A follow-up of the contact schedule (J+1, J+3, J+7…) is due for the seller."""

    lead_id: str
    assignment_id: str
    seller_id: str
    followup_number: int
    due_at: datetime


class AssignmentReassignedV1(EventPayload):
    """A manager moved the lead by hand: to a chosen seller (``offer``: an offer to accept;
    ``direct``: the seller holds it at once) or back to routing (``routing``). The previous
    holder's assignment, if any, was withdrawn (``assignment.withdrawn.v1``, reason
    ``reassigned``) just before."""

    lead_id: str
    mode: ManualMode
    reason: ManualReason
    assignment_id: str | None = Field(
        default=None, description="The new assignment (None when sent back to routing)."
    )
    seller_id: str | None = Field(
        default=None, description="The new seller (routing: the one offered; None: nobody)."
    )
    previous_assignment_id: str | None = None
    previous_seller_id: str | None = None
    reassigned_by: str = Field(description="Id of the manager's token, never a name.")
    reassigned_at: datetime


class AssignmentHandedBackV1(EventPayload):
    """The seller gave the lead back (not a loss): it is routed again, never to this seller in
    the same round."""

    lead_id: str
    assignment_id: str
    seller_id: str
    reason: HandBackReason
    handed_back_at: datetime


class LeadAppointmentRescheduledV1(EventPayload):
    """The appointment moved to a new time (the previous one is kept in dispatch's history)."""

    lead_id: str
    assignment_id: str
    seller_id: str
    appointment_at: datetime
    previous_appointment_at: datetime
    site_id: str | None = None
    rescheduled_at: datetime


class LeadAppointmentMissedV1(EventPayload):
    """The prospect did not come (no-show): the lead goes back to its seller's follow-ups."""

    lead_id: str
    assignment_id: str
    seller_id: str
    appointment_at: datetime
    site_id: str | None = None
    reported_at: datetime


class SellerWebhookDisabledV1(EventPayload):
    """Dispatch stopped delivering to a seller's tool (410 Gone or repeated failures)."""

    seller_id: str
    reason: Literal["gone", "too_many_failures"]
    consecutive_failures: int
    disabled_at: datetime


# -- dispatch's directory: calendars (topic vo.directory, key = site id) ---------------------

FULL_WEB_POOL = "full_web"
"""The key of the full-web pool's calendar (no site id can be spelt so)."""


class SiteCalendarChangedV1(EventPayload):
    """A site's business calendar (or the full-web pool's) as dispatch enforces it: created,
    changed, or re-published whole. State, not a diff: the latest event of a key is the truth,
    so a consumer can be (re)built from these events alone. No personal data."""

    calendar_id: str = Field(description="The site id, or `full_web` for the full-web pool.")
    site_id: str | None = Field(default=None, description="None for the full-web pool.")
    pool: Literal["in_store", "full_web"]
    timezone: str = Field(description="IANA time zone of the hours, e.g. Europe/Paris.")
    opening_hours: str = Field(
        description='Weekly hours with breaks: "mon-fri 09:00-12:30,14:00-19:00; sat 09:00-12:00".'
    )
    holiday_subdivision: str | None = Field(
        default=None, description="Subdivision of the `holidays` library (57, 67, 68, 974…)."
    )
    observe_holidays: bool = Field(default=True, description="Closed on public holidays.")
    closures: list[date] = Field(default_factory=list, description="Extra closed days.")
    change: Literal["created", "updated", "republished"]
    changed_at: datetime


# -- messages to and from the prospect (issue 13) --------------------------------------------
# Outgoing messages are qualify's (first answer, operator messages); the inbound channels are
# ingest's (IMAP, POST /v1/sources/email, the SMS provider). Bodies travel only in
# ``lead.message-received.v1`` (personal data); the other events carry ids, kinds and times.

MessageChannel = Literal["email", "sms"]
MessageKind = Literal["first_answer", "follow_up", "operator_reply"]
MessageOutcome = Literal["delivered", "bounced", "failed", "unconfirmed", "cancelled"]
BounceKind = Literal["hard", "soft"]
OptOutVia = Literal["stop_reply", "one_click"]


class LeadMessageSentV1(EventPayload):
    """Qualify handed a message to the SMTP server or the SMS provider (no body, no address)."""

    lead_id: str
    message_id: str = Field(description="Qualify's id of the message (the key in its Message-ID).")
    channel: MessageChannel
    kind: MessageKind
    operator_id: str | None = Field(
        default=None, description="Id of the operator's token; None for an automatic message."
    )
    attempt_id: str | None = Field(
        default=None, description="The contact attempt an operator's message was recorded as."
    )
    created_at: datetime = Field(description="When the message was decided (queued).")
    sent_at: datetime = Field(description="When the server or provider accepted it.")


class LeadMessageStatusChangedV1(EventPayload):
    """A message reached a later state: delivered (SMS receipt), bounced (hard bounce), failed
    (refused for good, or never handed over), unconfirmed (handed over but the answer was lost in
    a crash: never resent), cancelled (expired, or the person opted out before it left)."""

    lead_id: str
    message_id: str
    channel: MessageChannel
    kind: MessageKind
    status: MessageOutcome
    reason: str | None = Field(
        default=None,
        description="A code, never a text from outside: hard_bounce, not_delivered, "
        "permanent_error, gave_up, expired, opted_out, unreachable, crashed_mid_send…",
    )
    changed_at: datetime


class LeadMessageReceivedV1(EventPayload):
    """The prospect wrote back (an e-mail reply matched to the lead by its Reply-To plus-address
    or the Message-ID it quotes, or an SMS reply). Published by ingest. Personal data: sender,
    subject, text."""

    lead_id: str
    message_id: str = Field(
        description="Ingest's id of the inbound message (stable: a redelivery has the same id)."
    )
    channel: MessageChannel
    received_at: datetime
    sender: str = Field(
        max_length=320, description="The e-mail address or the E.164 number that wrote."
    )
    subject: str | None = Field(default=None, max_length=998)
    text: str = Field(
        max_length=20_000,
        description="The new text of the reply (quoted history removed when "
        "possible), cut to 20,000 characters.",
    )
    in_reply_to: str | None = Field(
        default=None,
        description="Qualify's message id this answers (the key of our Message-ID it quotes), "
        "when known.",
    )
    email_message_id: str | None = Field(
        default=None,
        max_length=998,
        description="The reply's own Message-ID header (e-mail), so that an answer to it "
        "threads in the prospect's mail client.",
    )
    stop_request: bool = Field(
        default=False,
        description='The reply asks to stop messages (an SMS "STOP", or an e-mail to the '
        "List-Unsubscribe mailto address).",
    )


class LeadMessageBouncedV1(EventPayload):
    """A delivery status notification came back for one of our e-mails. Published by ingest."""

    lead_id: str
    message_id: str = Field(description="Qualify's message id, from our Message-ID in the DSN.")
    bounce: BounceKind = Field(description="hard: failed with a 5.x.x status; soft: 4.x.x/delayed.")
    status: str | None = Field(default=None, max_length=16, description='e.g. "5.1.1"')
    smtp_code: int | None = Field(default=None, description="e.g. 550, when the DSN names one.")
    bounced_at: datetime


class LeadOptedOutV1(EventPayload):
    """The prospect asked qualify's messages to stop on a channel (an SMS STOP, an e-mail
    unsubscribe reply, or the one-click unsubscribe link). crm records it as an objection."""

    lead_id: str
    channel: MessageChannel
    via: OptOutVia
    opted_out_at: datetime
