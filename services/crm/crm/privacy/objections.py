"""The do-not-contact list: objections stored as keyed hashes and announced to every service."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from crm.privacy.repository import ObjectionRepository
from crm.privacy.schemas import ContactKind, ObjectionIn, ObjectionOut
from shared.errors import InvalidRequest
from shared.events.privacy import ContactSuppressedV1
from shared.normalize import normalize_email, normalize_phone
from shared.outbox import Outbox
from shared.privacy import CONTACT_SUPPRESSED, contact_hash


def keys_of(
    phone: str | None, email: str | None, *, location: Literal["body", "query"] = "body"
) -> list[tuple[ContactKind, str]]:
    """(kind, normalised key) pairs; a 422 problem naming the field (and where it was sent)
    that is not valid."""
    keys: list[tuple[ContactKind, str]] = []
    if phone:
        normalized = normalize_phone(phone)
        if normalized is None:
            raise _invalid("phone", "not a valid phone number", location)
        keys.append(("phone", normalized))
    if email:
        folded = normalize_email(email)
        if folded is None:
            raise _invalid("email", "not a valid e-mail address", location)
        keys.append(("email", folded))
    return keys


def _invalid(field: str, message: str, location: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid field: {field}",
        errors=[{"field": field, "location": location, "type": "value_error", "message": message}],
    )


async def record_objection(
    session: AsyncSession,
    outbox: Outbox,
    *,
    body: ObjectionIn,
    recorded_by: str,
    hmac_key: bytes,
    now: datetime,
) -> ObjectionOut:
    repository = ObjectionRepository.from_session(session)
    hashes = []
    for kind, key in keys_of(body.phone, body.email):
        digest = contact_hash(key, hmac_key)
        hashes.append(digest)
        await repository.add(
            contact_hash=digest,
            kind=kind,
            reason=body.reason,
            recorded_at=now,
            recorded_by=recorded_by,
        )
    event = ContactSuppressedV1(contact_hashes=hashes, reason=body.reason, suppressed_at=now)
    await outbox.stage(session, CONTACT_SUPPRESSED, hashes[0], event)
    return ObjectionOut(suppressed=True, reason=body.reason, since=now)


async def lookup(
    session: AsyncSession, *, phone: str | None, email: str | None, hmac_key: bytes
) -> ObjectionOut:
    hashes = [contact_hash(key, hmac_key) for _, key in keys_of(phone, email, location="query")]
    found = await ObjectionRepository.from_session(session).earliest(hashes)
    if found is None:
        return ObjectionOut(suppressed=False)
    return ObjectionOut(suppressed=True, reason=found.reason, since=found.recorded_at)
