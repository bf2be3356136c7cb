"""Problems of crm's privacy module."""

from __future__ import annotations

from shared.errors import Conflict


class ContactOfAnotherClient(Conflict):
    """The corrected phone or e-mail identifies another client: crm does not merge two people
    on a rectification (a wrong merge mixes two persons' data). The answer names the field and
    the other client's id, never the value."""

    slug, title = "contact-of-another-client", "Contact of another client"
