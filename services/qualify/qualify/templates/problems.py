"""Problems of the template API (RFC 9457)."""

from __future__ import annotations

from collections.abc import Sequence

from qualify.templates.rendering import TemplateError
from shared.errors import Conflict, InvalidRequest, NotFound


class TemplateNotFound(NotFound):
    """No template has this id."""

    slug, title = "template-not-found", "Unknown template"

    def __init__(self) -> None:
        super().__init__("No template has this id.")


class TemplateExists(Conflict):
    """A template of this kind and channel already exists for this site and source."""

    slug, title = "template-exists", "Template already exists"


def invalid_template(errors: Sequence[TemplateError]) -> InvalidRequest:
    """A 422 naming each field and unknown variable (names only: never a value)."""
    return InvalidRequest(
        "Invalid template: " + "; ".join(f"{error.field}: {error.message}" for error in errors),
        errors=[
            {"field": error.field, "location": "body", "type": error.type, "message": error.message}
            for error in errors
        ],
    )
