"""Bodies of the people API: people (and machines) who may call the services, and their
tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from dispatch.directory.schemas import SiteId
from shared.events.access import PersonKind
from shared.instants import Instant
from shared.settings import is_https_or_loopback

Role = Literal["operator", "manager", "seller", "dpo", "admin", "source"]
DisplayName = Annotated[str, Field(min_length=1, max_length=120)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _distinct(values: list[str] | None) -> list[str] | None:
    return None if values is None else sorted(set(values))


class SsoIdentity(_In):
    """Who the person is at the group's identity provider: a sign-in with a token of this
    issuer and subject is this person (their record's roles and sites apply)."""

    subject: str = Field(min_length=1, max_length=255, description="The provider's `sub`.")
    issuer: str | None = Field(
        default=None,
        max_length=255,
        description="The tokens' `iss`; default: dispatch's DISPATCH_OIDC_ISSUER.",
    )

    @field_validator("issuer")
    @classmethod
    def _url(cls, issuer: str | None) -> str | None:
        if issuer is not None and not is_https_or_loopback(issuer):
            raise ValueError("an https URL (http only on 127.0.0.1/localhost)")
        return issuer


class PersonIn(_In):
    display_name: DisplayName
    kind: PersonKind = Field(
        default="person", description="`machine`: a source or a seller's tool (no sign-in)."
    )
    roles: list[Role] = Field(min_length=1, max_length=6)
    sites: list[SiteId] | None = Field(
        default=None, max_length=500, description="Sites the person is limited to; null: all."
    )
    sso: SsoIdentity | None = None
    seller_id: str | None = Field(
        default=None,
        max_length=36,
        description="The directory's seller this person acts for (needed with the seller role).",
    )

    _distinct_roles = field_validator("roles")(_distinct)
    _distinct_sites = field_validator("sites")(_distinct)

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        check_coherent(self.kind, self.roles, self.sso is not None, self.seller_id)
        return self


class PersonPatch(_In):
    """Only the fields present change; `sites`, `sso` and `seller_id` may be set to null.
    `active: false` deactivates the person: every token is revoked, sign-ins are refused."""

    display_name: DisplayName | None = None
    roles: list[Role] | None = Field(default=None, min_length=1, max_length=6)
    sites: list[SiteId] | None = Field(default=None, max_length=500)
    sso: SsoIdentity | None = None
    seller_id: str | None = Field(default=None, max_length=36)
    active: StrictBool | None = None

    _distinct_roles = field_validator("roles")(_distinct)
    _distinct_sites = field_validator("sites")(_distinct)


def check_coherent(kind: str, roles: Sequence[str], has_sso: bool, seller_id: str | None) -> None:
    if kind == "machine" and has_sso:
        raise ValueError("a machine has no single sign-on identity")
    if ("seller" in roles) != (seller_id is not None):
        raise ValueError("the seller role and seller_id go together")


class SsoOut(BaseModel):
    issuer: str
    subject: str


class PersonOut(BaseModel):
    id: str = Field(description="The actor id the services record for this person.")
    display_name: str
    kind: PersonKind
    roles: list[str]
    sites: list[str] | None
    active: bool
    sso: SsoOut | None
    seller_id: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    deactivated_at: datetime | None


class PeoplePage(BaseModel):
    items: list[PersonOut]
    next_after: str | None = Field(description="Pass as `after` for the next page; null: last.")


class TokenIn(_In):
    label: str = Field(
        default="api", min_length=1, max_length=120, description="A device, a tool, a use."
    )
    expires_at: Instant | None = Field(
        default=None, description="When the token stops working; null: until revoked."
    )


class TokenOut(BaseModel):
    id: str
    person_id: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="The bearer token, shown once (only its hash is kept).")


class PeoplePublished(BaseModel):
    people: int
    tokens: int
