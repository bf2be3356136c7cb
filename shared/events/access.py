"""Payloads of the access topic (``vo.access``, key = person id): dispatch's people directory
tells every service who may call them. Tokens travel as their SHA-256 only, never in clear.

A person's record is whole in every event (the latest ``version`` wins: a late or replayed older
one changes nothing); a token's rights are its person's, so a token event carries only what
finds it (its hash) and when it stops. A revocation is final: a late "issued" for a revoked token
does not bring it back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.events.payloads import EventPayload

PersonKind = Literal["person", "machine"]
PersonChange = Literal["created", "updated", "deactivated", "reactivated", "republished"]


class PersonChangedV1(EventPayload):
    """A person (or a machine: a source, a seller's tool) of the directory, as it is now."""

    person_id: str
    version: int = Field(ge=1, description="Grows with every change of the record.")
    kind: PersonKind
    name: str = Field(max_length=120, description="Display name (staff data: never logged).")
    roles: list[str] = Field(min_length=1)
    sites: list[str] | None = Field(
        default=None, description="Sites the person is limited to; null: not limited."
    )
    active: bool
    sso_key: str | None = Field(
        default=None,
        description="uuid5 of the single sign-on identity (issuer, subject); neither in clear.",
    )
    seller_id: str | None = Field(default=None, description="The directory's seller, if any.")
    change: PersonChange
    changed_at: datetime


class TokenIssuedV1(EventPayload):
    """A token of the person was issued: its rights are the person's."""

    token_id: str
    person_id: str
    token_hash: str = Field(
        min_length=64, max_length=64, description="SHA-256 of the token, hex; never the token."
    )
    label: str = Field(max_length=120, description="What the token is for (a device, a tool).")
    expires_at: datetime | None = None
    issued_at: datetime


class TokenRevokedV1(EventPayload):
    """The token stops working everywhere (final)."""

    token_id: str
    person_id: str
    revoked_at: datetime
