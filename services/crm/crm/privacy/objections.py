"""The do-not-contact list: objections stored as keyed hashes and announced to every service."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm.models import contact_objection, infra
from shared.clock import utcnow
from shared.errors import InvalidRequest
from shared.events.privacy import ContactSuppressedV1
from shared.normalize import normalize_email, normalize_phone
from shared.outbox import stage
from shared.privacy import CONTACT_SUPPRESSED, contact_hash

Reason = Literal["objection", "opt_out", "legal_request"]


class ObjectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=254)
    reason: Reason = "objection"

    @model_validator(mode="after")
    def one_key(self) -> ObjectionIn:
        if not (self.phone or self.email):
            raise ValueError("give a phone or an e-mail")
        return self


class ObjectionOut(BaseModel):
    suppressed: bool
    reason: str | None = None
    since: datetime | None = None


def keys_of(phone: str | None, email: str | None) -> list[tuple[str, str]]:
    """(kind, normalised key) pairs; a 422 problem naming the field that is not valid."""
    keys: list[tuple[str, str]] = []
    if phone:
        normalized = normalize_phone(phone)
        if normalized is None:
            raise _invalid("phone", "not a valid phone number")
        keys.append(("phone", normalized))
    if email:
        folded = normalize_email(email)
        if folded is None:
            raise _invalid("email", "not a valid e-mail address")
        keys.append(("email", folded))
    return keys


def _invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid field: {field}",
        errors=[{"field": field, "location": "body", "type": "value_error", "message": message}],
    )


async def record_objection(
    session: AsyncSession, *, body: ObjectionIn, recorded_by: str, hmac_key: bytes
) -> ObjectionOut:
    now = utcnow()
    hashes = []
    for kind, key in keys_of(body.phone, body.email):
        digest = contact_hash(key, hmac_key)
        hashes.append(digest)
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        await session.execute(
            insert(contact_objection)
            .values(
                contact_hash=digest,
                kind=kind,
                reason=body.reason,
                recorded_at=now,
                recorded_by=recorded_by,
            )
            .on_conflict_do_nothing(index_elements=["contact_hash"])
        )
    event = ContactSuppressedV1(contact_hashes=hashes, reason=body.reason, suppressed_at=now)
    await stage(
        session,
        infra.outbox_event,
        source="/vo-leads/crm",
        event_type=CONTACT_SUPPRESSED,
        subject=hashes[0],
        payload=event,
    )
    return ObjectionOut(suppressed=True, reason=body.reason, since=now)


async def lookup(
    session: AsyncSession, *, phone: str | None, email: str | None, hmac_key: bytes
) -> ObjectionOut:
    hashes = [contact_hash(key, hmac_key) for _, key in keys_of(phone, email)]
    row = (
        await session.execute(
            select(contact_objection)
            .where(contact_objection.c.contact_hash.in_(hashes))
            .order_by(contact_objection.c.recorded_at)
            .limit(1)
        )
    ).first()
    if row is None:
        return ObjectionOut(suppressed=False)
    return ObjectionOut(suppressed=True, reason=row.reason, since=row.recorded_at)
