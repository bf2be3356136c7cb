"""Qualify's problems (RFC 9457). Details name ids and states, never personal data."""

from __future__ import annotations

from shared.errors import Conflict, NotFound


class LeadNotFound(NotFound):
    """No lead has this id."""

    slug, title = "lead-not-found", "Unknown lead"

    def __init__(self) -> None:
        super().__init__("No lead has this id.")


class QueueEmpty(NotFound):
    """No lead is waiting for an operator (with these filters)."""

    slug, title = "queue-empty", "Queue empty"


class LeadClosed(Conflict):
    """The lead was already qualified or disqualified."""

    slug, title = "lead-closed", "Lead closed"


class LeadQualified(Conflict):
    """The lead was qualified: it belongs to dispatch and is never reopened."""

    slug, title = "lead-qualified", "Lead qualified"


class LeadOpen(Conflict):
    """The lead is open: there is nothing to reopen."""

    slug, title = "lead-open", "Lead open"


class CallbackScheduled(Conflict):
    """Another operator's call-back is scheduled on the lead and its time has not come."""

    slug, title = "callback-scheduled", "Call-back scheduled by another operator"


class CallbackNotFound(NotFound):
    """The lead has no scheduled call-back."""

    slug, title = "callback-not-found", "No call-back scheduled"


class LeadClaimed(Conflict):
    """Another operator holds the lead."""

    slug, title = "lead-claimed", "Lead claimed by another operator"


class ContactSuppressed(Conflict):
    """The person objected (do-not-contact list): marketing consents cannot be recorded."""

    slug, title = "contact-suppressed", "Contact on the do-not-contact list"


class ClaimRequired(Conflict):
    """The caller must hold an active claim on the lead."""

    slug, title = "claim-required", "Claim required"


class MissingContactDetail(Conflict):
    """The lead has no phone number or e-mail address for this channel."""

    slug, title = "missing-contact-detail", "No contact detail for this channel"


class ContactNotAllowed(Conflict):
    """The contact rules forbid this call (``reason`` says which rule, ``next_allowed_at`` the
    first instant they allow one)."""

    slug, title = "contact-not-allowed", "Contact not allowed"


class RoutingRuleNotFound(NotFound):
    """No routing rule for this source or site."""

    slug, title = "routing-rule-not-found", "No routing rule"

    def __init__(self) -> None:
        super().__init__("No routing rule for this source or site.")


class AdRefPrefixTaken(Conflict):
    """Another site's rule already claims one of these ad-reference prefixes."""

    slug, title = "ad-ref-prefix-taken", "Ad-reference prefix taken"
