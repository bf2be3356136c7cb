"""The webhook's JSON: ``entry[].changes[]`` (Lead Ads ids only) and ``entry[].messaging[]``
(Messenger). Tolerant of any shape: what cannot be read is counted, never raised."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ingest.canonical import Ignore, LeadDraft, Outcome


@dataclass(frozen=True)
class LeadgenRef:
    leadgen_id: str
    page_id: str | None
    form_id: str | None
    ad_id: str | None


@dataclass
class Notification:
    leadgen: list[LeadgenRef] = field(default_factory=list)
    messages: list[Outcome] = field(default_factory=list)
    skipped: int = 0


def _id(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str):
        text = str(value).strip()
        return text[:64] or None
    return None


def _ms(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1e14:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    return None


def read_notification(document: Any) -> Notification:
    result = Notification()
    entries = document.get("entry") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        return result
    for entry in entries:
        if not isinstance(entry, dict):
            result.skipped += 1
            continue
        page_id = _id(entry.get("id"))
        for change in entry.get("changes") or []:
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(change, dict) or change.get("field") != "leadgen":
                result.skipped += 1
                continue
            leadgen_id = _id(value.get("leadgen_id")) if isinstance(value, dict) else None
            if leadgen_id is None or not isinstance(value, dict):
                result.skipped += 1
                continue
            result.leadgen.append(
                LeadgenRef(
                    leadgen_id=leadgen_id,
                    page_id=_id(value.get("page_id")) or page_id,
                    form_id=_id(value.get("form_id")),
                    ad_id=_id(value.get("ad_id")),
                )
            )
        for event in entry.get("messaging") or []:
            outcome = _message(event, page_id)
            if outcome is None:
                result.skipped += 1
            else:
                result.messages.append(outcome)
    return result


def _message(event: Any, page_id: str | None) -> Outcome | None:
    if not isinstance(event, dict):
        return None
    message = event.get("message")
    if not isinstance(message, dict) or message.get("is_echo"):
        return None
    mid = _id(message.get("mid")) if isinstance(message.get("mid"), str) else None
    sender = event.get("sender")
    psid = _id(sender.get("id")) if isinstance(sender, dict) else None
    if mid is None:
        return None
    text = message.get("text") if isinstance(message.get("text"), str) else None
    if not text:
        attachments = message.get("attachments")
        kinds = (
            [a.get("type") for a in attachments if isinstance(a, dict)]
            if isinstance(attachments, list)
            else []
        )
        kinds = [str(kind)[:20] for kind in kinds if kind]
        if not kinds:
            return Ignore("messenger_event_without_content")
        text = "[" + ", ".join(f"pièce jointe : {kind}" for kind in kinds) + "]"
    return LeadDraft(
        source="facebook",
        source_ref=f"messenger:{mid}",
        kind="message",
        received_at=_ms(event.get("timestamp")),
        message=text[:10_000],
        extra={key: value for key, value in (("psid", psid), ("page_id", page_id)) if value},
        layout="messenger",
    )
