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
    """The contact rules forbid this attempt now (``reason`` says which rule)."""

    slug, title = "contact-not-allowed", "Contact not allowed"
