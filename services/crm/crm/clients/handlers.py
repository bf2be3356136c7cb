"""Event handlers of clients: resolve the person, then append to their timeline."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from crm.clients.receipts import Receipt, resolve
from crm.clients.repository import ClientRepository
from shared.clock import Clock
from shared.consumer import Handler
from shared.events import Envelope
from shared.events.payloads import LeadReceivedV1


def lead_received_handler(clock: Clock) -> Handler:
    """Resolve the person of a new lead (``clock`` stamps a new client's creation), with the
    transaction's other receipts when it commits (``ClientRepository.hold_receipt``)."""

    async def on_lead_received(session: AsyncSession, envelope: Envelope) -> None:
        event = LeadReceivedV1.model_validate(envelope.data)
        receipt = Receipt.of(event, envelope.id, now=clock())
        ClientRepository.from_session(session).hold_receipt(receipt)

    return on_lead_received


async def resolve_client(
    session: AsyncSession, event: LeadReceivedV1, entry_id: str, *, now: datetime
) -> None:
    """Resolve the person of a new lead at once (its client is found in the session then)."""
    repository = ClientRepository.from_session(session)
    receipt = Receipt.of(event, entry_id, now=now)
    seen, found = await repository.seen_and_match(entry_id, receipt.phone, receipt.email)
    if seen:
        return
    resolved = resolve(receipt, found)
    if resolved.new_client is not None:
        entry = {key: value for key, value in resolved.entry.items() if key != "client_id"}
        await repository.insert_client_and_entry(resolved.new_client, entry)
        return
    if resolved.changes:
        await repository.update_client(resolved.entry["client_id"], resolved.changes)
    await repository.insert_entry(resolved.entry)
