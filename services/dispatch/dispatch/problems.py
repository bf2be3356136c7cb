"""Dispatch's problems (RFC 9457). Each keeps the type and title of the shared problem it
refines (``/problems/not-found``…), except the conflicts a client must tell apart, which have
their own type (``/problems/illegal-transition``, ``/problems/seller-at-capacity``…); the class
names the resource or rule, and its docstring is its description in the OpenAPI document (one
line). Details name ids and states, never personal data. ``IllegalTransition`` carries
``status_now`` and ``allowed_from``."""

from __future__ import annotations

from shared.errors import Conflict, Forbidden, NotFound


class UnknownLead(NotFound):
    """No lead has this id."""


class UnknownAssignment(NotFound):
    """No assignment has this id."""


class UnknownSite(NotFound):
    """No site has this id (or the body's site_id)."""


class UnknownSeller(NotFound):
    """No seller has this id (or the body's seller id)."""


class UnknownDelivery(NotFound):
    """No webhook delivery has this id."""


class NotYourAssignment(Forbidden):
    """The assignment belongs to another seller, or the token to no seller of the directory."""


class NotASeller(Forbidden):
    """The token belongs to no seller of the directory."""


class IllegalTransition(Conflict):
    """The assignment's status does not allow this move, the accept deadline passed, or a no-show
    is reported before the appointment's time."""

    slug, title = "illegal-transition", "Illegal transition"


class DirectoryConflict(Conflict):
    """The site id or the schedule's scope is taken, or the body's id differs from the path's."""


class EndpointDisabled(Conflict):
    """The seller's webhook endpoint is disabled; enable it first."""


class LeadClosed(Conflict):
    """The lead is closed (won or lost): there is nothing to assign."""

    slug, title = "lead-closed", "Lead closed"


class LeadHeld(Conflict):
    """A seller holds the lead: reassign their assignment instead."""

    slug, title = "lead-held", "Lead held by a seller"


class SellerUnavailable(Conflict):
    """The chosen seller is inactive or absent now, or has the lead already."""

    slug, title = "seller-unavailable", "Seller unavailable"


class SellerAtCapacity(Conflict):
    """The chosen seller has no room left (set allow_over_capacity to go beyond it)."""

    slug, title = "seller-at-capacity", "Seller at capacity"


class UnknownPerson(NotFound):
    """No person has this id."""


class UnknownToken(NotFound):
    """The person has no token with this id."""


class PersonConflict(Conflict):
    """The single sign-on identity (or the id it gives) belongs to another person."""

    slug, title = "person-conflict", "Person conflict"


class PersonInactive(Conflict):
    """The person is deactivated: reactivate them before issuing a token."""

    slug, title = "person-inactive", "Person inactive"
