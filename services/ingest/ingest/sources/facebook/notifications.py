"""The webhook's JSON: ``entry[].changes[]`` (Lead Ads ids only) and ``entry[].messaging[]``
(Messenger). Never raises: what Meta documents but does not concern leads (other ``field``s,
echoes, read receipts) is skipped; what has another shape than Meta documents (a ``changes``
that is a number, a change that is not an object, a leadgen change without its id…) is named in
``problems`` (paths and expected types, never values) so the notification is quarantined, its
readable parts still taken."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ingest.canonical import Ignore, LeadDraft, Outcome, Quarantine
from ingest.canonical.instants import utc_instant

MALFORMED = "facebook_notification_malformed"
_PROBLEMS_NAMED = 5


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
    problems: list[str] = field(default_factory=list)

    def quarantine(self) -> Quarantine | None:
        """The quarantine reason of a notification with parts of an unexpected shape."""
        if not self.problems:
            return None
        named = "; ".join(self.problems[:_PROBLEMS_NAMED])
        more = len(self.problems) - _PROBLEMS_NAMED
        return Quarantine(MALFORMED, named + (f"; and {more} more" if more > 0 else ""))


def _id(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str):
        text = str(value).strip()
        return text[:64] or None
    return None


def _ms(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1e14:
        return utc_instant(datetime.fromtimestamp(value / 1000, tz=UTC))
    return None


def _list(container: dict[str, Any], key: str, path: str, problems: list[str]) -> list[Any]:
    """``container[key]`` when it is a list; absent or null is an empty list; anything else is
    a problem (a number, a string, an object…)."""
    value = container.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"{path}.{key}: not a list")
        return []
    return value


def read_notification(document: Any) -> Notification:
    result = Notification()
    if not isinstance(document, dict):
        result.problems.append("body: not an object")
        return result
    for index, entry in enumerate(_list(document, "entry", "body", result.problems)):
        path = f"entry[{index}]"
        if not isinstance(entry, dict):
            result.problems.append(f"{path}: not an object")
            continue
        page_id = _id(entry.get("id"))
        for number, change in enumerate(_list(entry, "changes", path, result.problems)):
            _change(change, f"{path}.changes[{number}]", page_id, result)
        for number, event in enumerate(_list(entry, "messaging", path, result.problems)):
            where = f"{path}.messaging[{number}]"
            if not isinstance(event, dict):
                result.problems.append(f"{where}: not an object")
                continue
            outcome = _message(event, page_id, where, result.problems)
            if outcome is None:
                result.skipped += 1
            else:
                result.messages.append(outcome)
    return result


def _change(change: Any, path: str, page_id: str | None, result: Notification) -> None:
    if not isinstance(change, dict):
        result.problems.append(f"{path}: not an object")
        return
    if change.get("field") != "leadgen":
        result.skipped += 1  # another subscription (feed…): not a lead
        return
    value = change.get("value")
    if not isinstance(value, dict):
        result.problems.append(f"{path}.value: not an object")
        return
    leadgen_id = _id(value.get("leadgen_id"))
    if leadgen_id is None:
        result.problems.append(f"{path}.value.leadgen_id: missing or not a number or string")
        return
    result.leadgen.append(
        LeadgenRef(
            leadgen_id=leadgen_id,
            page_id=_id(value.get("page_id")) or page_id,
            form_id=_id(value.get("form_id")),
            ad_id=_id(value.get("ad_id")),
        )
    )


def _message(
    event: dict[str, Any], page_id: str | None, path: str, problems: list[str]
) -> Outcome | None:
    """A Messenger event's lead; None for what is not a message (read receipts, deliveries,
    echoes of the page's own messages) or a message of another shape (a problem)."""
    if "message" not in event:
        return None
    message = event["message"]
    if not isinstance(message, dict):
        problems.append(f"{path}.message: not an object")
        return None
    if message.get("is_echo"):
        return None
    mid = _id(message.get("mid")) if isinstance(message.get("mid"), str) else None
    sender = event.get("sender")
    psid = _id(sender.get("id")) if isinstance(sender, dict) else None
    if mid is None:
        problems.append(f"{path}.message.mid: missing or not a string")
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
