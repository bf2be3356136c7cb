"""Data minimisation of crm's client reads: an operator sees a client's history (steps, ids,
outcomes) to know where a prospect stands, not their contact details, which they read in
qualify's queue for the leads they work on. Managers and the data-protection officer read
clients whole (``Principal.reads_any_contact``)."""

from __future__ import annotations

from crm.clients.schemas import ClientOut, TimelineEntryOut
from shared.auth import Principal

# What a lead's receipt copies of its contact (crm/clients/handlers.py).
_RECEIPT_CONTACT = "contact"


def for_caller(client: ClientOut, caller: Principal) -> ClientOut:
    """The client as this caller may read it."""
    if caller.reads_any_contact():
        return client
    return client.model_copy(
        update={
            "first_name": None,
            "last_name": None,
            "full_name": None,
            "phone": None,
            "email": None,
            "timeline": [_without_contact(entry) for entry in client.timeline],
            "withheld": ["contact"],
        }
    )


def _without_contact(entry: TimelineEntryOut) -> TimelineEntryOut:
    if _RECEIPT_CONTACT not in entry.details:
        return entry
    details = {key: value for key, value in entry.details.items() if key != _RECEIPT_CONTACT}
    return entry.model_copy(update={"details": details})
