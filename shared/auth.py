"""Bearer tokens with roles. Tokens are random; only their SHA-256 is stored (``api_token``).

Roles: operator, manager, seller, admin (every right), source (systems that post leads).
A caller is a ``Principal``: from an API token (machines, shared tokens), or from an OIDC access
token of the dealer group's identity provider (single sign-on, ``shared.oidc``).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import utcnow

ROLES: tuple[str, ...] = ("operator", "manager", "seller", "admin", "source")
TOKEN_PREFIX = "vo_"


PrincipalSource = Literal["api_token", "oidc"]


@dataclass(frozen=True)
class Principal:
    """Who calls. ``token_id`` is the caller's stable id, recorded as the actor (``claimed_by``,
    ``operator_id``…): an API token's id, or for single sign-on a UUID derived from the issuer
    and the subject (the same person keeps it across tokens)."""

    token_id: str
    name: str
    roles: frozenset[str]
    # The identity provider's subject (``sub``); None for an API token.
    subject: str | None = None
    # The sites the caller is limited to; None: not limited by its credentials.
    sites: frozenset[str] | None = None
    via: PrincipalSource = "api_token"

    def has_any(self, roles: Iterable[str]) -> bool:
        return "admin" in self.roles or bool(self.roles.intersection(roles))

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
            roles=",".join(sorted(parse_roles(",".join(roles)))),
            created_at=utcnow(),
        )
    )
    return token_id


async def authenticate(session: AsyncSession, table: Table, token: str) -> Principal | None:
    row = (
        await session.execute(
            select(table.c.id, table.c.name, table.c.roles).where(
                table.c.token_hash == hash_token(token), table.c.revoked_at.is_(None)
            )
        )
    ).first()
    if row is None:
        return None
    return Principal(token_id=row.id, name=row.name, roles=frozenset(row.roles.split(",")))
