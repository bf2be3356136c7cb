"""Dispatch's problems (RFC 9457). Each keeps the type and title of the shared problem it
refines (``/problems/not-found``…); the class names the resource or rule, and its docstring is
its description in the OpenAPI document (one line). Details name ids and states, never personal
data. ``IllegalTransition`` carries ``status_now`` and ``allowed_from``."""

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


class IllegalTransition(Conflict):
    """The assignment's status does not allow this call-back, or the accept deadline passed."""

    slug, title = "illegal-transition", "Illegal transition"


class DirectoryConflict(Conflict):
    """The site id or the schedule's scope is taken, or the body's id differs from the path's."""


class EndpointDisabled(Conflict):
    """The seller's webhook endpoint is disabled; enable it first."""
