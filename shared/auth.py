"""Bearer tokens with roles. Tokens are random; only their SHA-256 is stored (``api_token``).

Roles: operator, manager, seller, dpo (the data-protection officer), admin (every right), source
(systems that post leads). A caller is a ``Principal``: from an API token (machines, people
without single sign-on, ``make token``), or from an OIDC access token of the dealer group's
identity provider (single sign-on, ``shared.oidc``).

A token issued to a named person (dispatch's people directory, ``shared.access``) takes its
name, roles and sites from the person's record, which every service holds a copy of
(``access_person``): a person deactivated or changed is refused or narrowed at once.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import utcnow

ROLES: tuple[str, ...] = ("operator", "manager", "seller", "dpo", "admin", "source")
TOKEN_PREFIX = "vo_"
# Data minimisation: who may read the contact details of any lead or client (admin always may).
# Operators read them where they work only: qualify's queue and the leads they hold.
CONTACT_READERS: tuple[str, ...] = ("manager", "dpo")


PrincipalSource = Literal["api_token", "oidc"]


@dataclass(frozen=True)
class Principal:
    """Who calls. ``token_id`` is the caller's stable actor id, recorded as the actor
    (``claimed_by``, ``operator_id``…): the person's id for a named person (whatever token or
    sign-in they use), an API token's id for a token of nobody (machines, ``make token``), or for
    single sign-on without a person record a UUID derived from the issuer and the subject."""

    token_id: str
    name: str
    roles: frozenset[str]
    # The identity provider's subject (``sub``); None for an API token.
    subject: str | None = None
    # The sites the caller is limited to; None: not limited by its credentials.
    sites: frozenset[str] | None = None
    via: PrincipalSource = "api_token"
    # The directory's person this caller is (None: a token of nobody, or an unknown sign-in).
    person_id: str | None = None
    # The API token used (its id), when the caller came with one.
    credential_id: str | None = None
    # When the credentials stop being accepted (an API token's expiry, an access token's exp).
    expires_at: datetime | None = None

    @property
    def actor_id(self) -> str:
        return self.token_id

    def has_any(self, roles: Iterable[str]) -> bool:
        return "admin" in self.roles or bool(self.roles.intersection(roles))

    def reads_any_contact(self) -> bool:
        """Whether the caller may read the contact details of any lead or client."""
        return self.has_any(CONTACT_READERS)

    def covers_site(self, site_id: str) -> bool:
        """Whether the caller may act for ``site_id`` (an admin, or no site limit, always may)."""
        return "admin" in self.roles or self.sites is None or site_id in self.sites


def hash_token(token: str) -> str:
    # Tokens carry 256 bits of entropy: a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def parse_roles(text: str) -> frozenset[str]:
    roles = frozenset(role.strip() for role in text.split(",") if role.strip())
    unknown = roles.difference(ROLES)
    if unknown or not roles:
        raise ValueError(f"roles must be a non-empty subset of {', '.join(ROLES)}")
    return roles


def roles_text(roles: Iterable[str]) -> str:
    """The stored form of a set of roles (sorted, comma-separated; checked)."""
    return ",".join(sorted(parse_roles(",".join(roles))))


async def store_token(
    session: AsyncSession, table: Table, *, token: str, name: str, roles: Iterable[str]
) -> str:
    """Store a token's hash (idempotent for the same token). Returns the token id."""
    token_hash = hash_token(token)
    existing = await session.scalar(select(table.c.id).where(table.c.token_hash == token_hash))
    if existing is not None:
        return str(existing)
    token_id = str(uuid.uuid4())
    await session.execute(
        insert(table).values(
            id=token_id,
            name=name,
            token_hash=token_hash,
            roles=roles_text(roles),
            created_at=utcnow(),
        )
    )
    return token_id


async def authenticate(
    session: AsyncSession, api_token: Table, person: Table, token: str, now: datetime
) -> Principal | None:
    """The principal of an API token: unknown, revoked or expired tokens, and tokens of a person
    who is unknown here or deactivated, are None."""
    row = (
        await session.execute(
            select(
                api_token.c.id,
                api_token.c.name,
                api_token.c.roles,
                api_token.c.person_id,
                api_token.c.expires_at,
                person.c.name.label("person_name"),
                person.c.roles.label("person_roles"),
                person.c.sites.label("person_sites"),
                person.c.active.label("person_active"),
            )
            .select_from(api_token.outerjoin(person, person.c.id == api_token.c.person_id))
            .where(api_token.c.token_hash == hash_token(token), api_token.c.revoked_at.is_(None))
        )
    ).first()
    if row is None or (row.expires_at is not None and now >= row.expires_at):
        return None
    if row.person_id is None:
        return Principal(
            token_id=row.id,
            name=row.name,
            roles=frozenset(row.roles.split(",")),
            credential_id=row.id,
            expires_at=row.expires_at,
        )
    if not row.person_active:  # deactivated, or its record has not arrived here (yet)
        return None
    return Principal(
        token_id=row.person_id,
        name=row.person_name,
        roles=stored_roles(row.person_roles),
        sites=stored_sites(row.person_sites),
        person_id=row.person_id,
        credential_id=row.id,
        expires_at=row.expires_at,
    )


def stored_roles(text: str) -> frozenset[str]:
    return frozenset(role for role in text.split(",") if role)


def stored_sites(value: object) -> frozenset[str] | None:
    """A stored JSON list of site ids; None (not limited) when absent."""
    if not isinstance(value, list):
        return None
    return frozenset(str(site) for site in value)
