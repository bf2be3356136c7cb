"""Rectification (GDPR Art. 16), crm's share: a manager corrects a client's names, phone or
e-mail. crm's client record and the contact each of its leads brought (the receipts on the
timeline, read when judging or splitting a merge) take the new values; the timeline records who
changed which fields (never a value); ``privacy.client-rectified.v1`` carries the new values to
every service holding the leads (ingest, qualify, dispatch, which tells the sellers' tools).

A phone or e-mail that identifies another client is refused (409): merging two people is never a
side effect of a correction. Sending the values a client already has changes nothing and
publishes nothing (a PATCH may be repeated).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm.clients.identity import RELAY_EMAIL_DOMAINS
from crm.clients.repository import ClientRepository
from crm.models import Client, TimelineEntry
from crm.privacy.problems import ContactOfAnotherClient
from crm.privacy.schemas import RectificationIn
from shared.auth import Principal
from shared.errors import NotFound, invalid_parameter
from shared.events.privacy import ClientRectifiedV1, RectifiableField
from shared.normalize import normalize_email, normalize_phone
from shared.outbox import Outbox

CLIENT_RECTIFIED = "privacy.client-rectified.v1"
TIMELINE_KIND = "client.rectified"

# crm's fields, in the order answers and the timeline list them.
_FIELDS = ("first_name", "last_name", "full_name", "phone", "email")
# The fields the event carries (the other services hold the full name, not its parts).
_EVENT_FIELDS: tuple[RectifiableField, ...] = ("full_name", "phone", "email")


@dataclass(frozen=True)
class Rectification:
    client: Client
    changed: tuple[str, ...]  # crm's field names, empty when nothing differed


def corrected_values(client: Client, body: RectificationIn) -> dict[str, str | None]:
    """The client's five fields after the correction (validated and normalised)."""
    sent = body.model_fields_set
    values: dict[str, str | None] = {name: getattr(client, name) for name in _FIELDS}
    for name in ("first_name", "last_name", "full_name"):
        if name in sent:
            values[name] = getattr(body, name)
    if "full_name" not in sent and sent & {"first_name", "last_name"}:
        if client.full_name not in (None, _joined(client.first_name, client.last_name)):
            # The name was not made of these parts (a source that gives one field): a part
            # alone cannot say what the full name becomes.
            raise invalid_parameter(
                "full_name", "send the corrected full name with its parts", location="body"
            )
        values["full_name"] = _joined(values["first_name"], values["last_name"])
    if "phone" in sent:
        values["phone"] = _phone(body.phone)
    if "email" in sent:
        values["email"] = _email(body.email)
    return values


def _joined(first: str | None, last: str | None) -> str | None:
    return " ".join(part for part in (first, last) if part) or None


def _phone(raw: str | None) -> str | None:
    if raw is None:
        return None
    phone = normalize_phone(raw)
    if phone is None:
        raise invalid_parameter("phone", "not a valid phone number", location="body")
    return phone


def _email(raw: str | None) -> str | None:
    if raw is None:
        return None
    email = normalize_email(raw)
    if email is None:
        raise invalid_parameter("email", "not a valid e-mail address", location="body")
    if email.rpartition("@")[2] in RELAY_EMAIL_DOMAINS:
        raise invalid_parameter(
            "email", "a marketplace relay address identifies nobody", location="body"
        )
    return email


async def rectify_client(
    session: AsyncSession,
    outbox: Outbox,
    *,
    client_id: str,
    body: RectificationIn,
    actor: Principal,
    now: datetime,
) -> Rectification:
    repository = ClientRepository.from_session(session)
    client = await repository.get_for_update(client_id)
    if client is None:
        raise NotFound("No client has this id.")
    values = corrected_values(client, body)
    changed = tuple(name for name in _FIELDS if values[name] != getattr(client, name))
    if not changed:
        return Rectification(client, ())
    await _refuse_another_clients_keys(repository, client, values, changed)
    for name in changed:
        setattr(client, name, values[name])
    entries = await repository.timeline_of(client.id)
    lead_ids = sorted({entry.lead_id for entry in entries})
    _correct_receipts(entries, {name: values[name] for name in changed})
    session.add(
        TimelineEntry(
            id=str(uuid.uuid4()),
            client_id=client.id,
            lead_id=lead_ids[0],
            kind=TIMELINE_KIND,
            occurred_at=now,
            source=None,
            # Who (an actor id: answers add the name) and which fields; the values are on the
            # client, the old ones nowhere.
            details={"fields": list(changed), "by": actor.token_id},
        )
    )
    event_fields = [name for name in _EVENT_FIELDS if name in changed]
    if "full_name" not in event_fields and {"first_name", "last_name"} & set(changed):
        event_fields.insert(0, "full_name")  # a part changed the name the others hold
    if event_fields:
        event = ClientRectifiedV1(
            client_id=client.id,
            lead_ids=lead_ids,
            fields=event_fields,
            rectified_by=actor.token_id,
            rectified_at=now,
            **{name: values[name] for name in event_fields},
        )
        await outbox.stage(session, CLIENT_RECTIFIED, client.id, event)
    await session.flush()
    return Rectification(client, changed)


async def _refuse_another_clients_keys(
    repository: ClientRepository,
    client: Client,
    values: dict[str, str | None],
    changed: tuple[str, ...],
) -> None:
    for name, find in (("phone", repository.find_by_phone), ("email", repository.find_by_email)):
        value = values[name]
        if name not in changed or value is None:
            continue
        other = await find(value)
        if other is not None and other.id != client.id:
            raise ContactOfAnotherClient(
                f"This {name} identifies another client; crm does not merge clients on a "
                "rectification (erase or correct the other client first).",
                field=name,
                other_client_id=other.id,
            )


def _correct_receipts(entries: list[TimelineEntry], corrected: dict[str, Any]) -> None:
    """The contact each lead brought (``lead.received`` entries) takes the corrected values:
    a later split rebuilds clients from them and must not bring the wrong ones back."""
    for entry in entries:
        contact = entry.details.get("contact")
        if entry.kind != "lead.received" or not isinstance(contact, dict):
            continue
        # A new dict: the JSON column sees the change.
        entry.details = {**entry.details, "contact": {**contact, **corrected}}
