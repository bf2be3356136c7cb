"""The seller's feed: every message written for their tool, in the order written, from a keyset
cursor (time written, message id). A tool that missed webhooks (down, endpoint disabled, or no
endpoint at all) reads on from the last cursor it saw.

Messages younger than ``DISPATCH_SELLER_FEED_SETTLE_S`` are not served yet: a transaction that
wrote a message a moment before another may commit a moment after it, and a cursor already past
it would skip it for good.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from dispatch.models import WebhookDelivery
from dispatch.sellers.schemas import Feed, FeedEvent
from dispatch.webhooks.repository import WebhookRepository
from shared.errors import InvalidRequest

Cursor = tuple[datetime, str]


def encode_cursor(written_at: datetime, message_id: str) -> str:
    raw = f"{written_at.astimezone(UTC).isoformat()}|{message_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Cursor:
    """The (time, id) of a cursor; 422 when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, message_id = raw.split("|", 1)
        written_at = datetime.fromisoformat(moment)
        if written_at.tzinfo is None or not message_id:
            raise ValueError("not a cursor")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest(
            "Invalid parameter: after",
            errors=[
                {
                    "field": "after",
                    "location": "query",
                    "type": "value_error",
                    "message": "not a cursor of this feed",
                }
            ],
        ) from None
    return written_at, message_id


async def read_feed(
    repo: WebhookRepository,
    seller_id: str,
    *,
    after: str | None,
    limit: int,
    now: datetime,
    settle: timedelta,
) -> Feed:
    start = decode_cursor(after) if after is not None else None
    rows = await repo.seller_feed(seller_id, after=start, until=now - settle, limit=limit + 1)
    events = [_event(row) for row in rows[:limit]]
    return Feed(
        events=events,
        next_cursor=events[-1].cursor if events else after,
        has_more=len(rows) > limit,
    )


def _event(row: WebhookDelivery) -> FeedEvent:
    body: dict[str, Any] = json.loads(row.body)
    data: dict[str, Any] = body.get("data") or {}
    lead_id = row.lead_id or data.get("lead_id")  # lead.erased outlives the lead's rows
    return FeedEvent(
        cursor=encode_cursor(row.created_at, row.id),
        id=row.id,
        type=row.event_type,
        timestamp=row.created_at,
        lead_id=lead_id if isinstance(lead_id, str) else None,
        delivery=row.status,
        data=data,
    )
