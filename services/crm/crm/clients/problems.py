"""Problems of crm's clients module."""

from __future__ import annotations

from shared.errors import Forbidden


class LookupByContactOnly(Forbidden):
    """Data minimisation: an operator finds a client by the exact phone or e-mail they already
    hold, never by listing clients or searching names (managers and the data-protection
    officer do that)."""

    slug, title = "lookup-by-contact-only", "Look clients up by phone or e-mail"
