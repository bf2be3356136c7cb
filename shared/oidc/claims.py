"""From a verified access token's claims to the person it names: an ``Identity`` (what the
provider says) and the ``Principal`` the routes see."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.auth import ROLES, Principal
from shared.oidc.config import OidcConfig

# Namespace of the actor ids of signed-in people (uuid5 of issuer and subject).
_ACTOR_NAMESPACE = uuid.UUID("5d0c3f5e-7a52-4c1e-9b7e-0f1c2a6b9e41")
_NAME_MAX = 120  # the operator_name columns


@dataclass(frozen=True)
class Identity:
    """A person (or a machine) as the identity provider vouches for them."""

    issuer: str
    subject: str
    name: str
    roles: frozenset[str]  # only the roles this project knows; the others are dropped
    sites: frozenset[str] | None  # None: the token does not limit the sites
    expires_at: datetime

    @property
    def actor_id(self) -> str:
        return actor_id(self.issuer, self.subject)

    def principal(self) -> Principal:
        return Principal(
            token_id=self.actor_id,
            name=self.name,
            roles=self.roles,
            subject=self.subject,
            sites=self.sites,
            via="oidc",
        )


def actor_id(issuer: str, subject: str) -> str:
    """The stable id of a signed-in person: the same across tokens, 36 characters like an API
    token's id, and revealing neither the issuer nor the subject."""
    return str(uuid.uuid5(_ACTOR_NAMESPACE, f"{issuer}\n{subject}"))


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The claim at a dotted path (``realm_access.roles``); a claim whose own name has a dot
    is found first."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _strings(value: Any) -> frozenset[str] | None:
    """A list of strings, or one string of space- or comma-separated values; None if absent."""
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset(part for part in value.replace(",", " ").split() if part)
    if isinstance(value, list | tuple):
        return frozenset(item.strip() for item in value if isinstance(item, str) and item.strip())
    return frozenset()


def identity_from_claims(claims: Mapping[str, Any], config: OidcConfig) -> Identity:
    """Claims already checked (signature, iss, aud, exp, sub) by the verifier."""
    subject = str(claims["sub"])
    roles = (_strings(claim_at(claims, config.roles_claim)) or frozenset()).intersection(ROLES)
    name = claim_at(claims, config.name_claim)
    if not isinstance(name, str) or not name.strip():
        name = claims.get("preferred_username")
    if not isinstance(name, str) or not name.strip():
        name = f"sso-{actor_id(config.issuer, subject)[:8]}"
    return Identity(
        issuer=config.issuer,
        subject=subject,
        name=name.strip()[:_NAME_MAX],
        roles=frozenset(roles),
        sites=_strings(claim_at(claims, config.sites_claim)),
        expires_at=datetime.fromtimestamp(float(claims["exp"]), tz=UTC),
    )
