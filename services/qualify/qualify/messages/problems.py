"""Problems of the messages' public routes (RFC 9457)."""

from __future__ import annotations

from shared.errors import NotFound


class UnknownLink(NotFound):
    """The link is unknown, or its lead was erased."""

    slug, title = "unknown-link", "Unknown link"
