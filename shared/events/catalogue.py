"""The event catalogue: every versioned type, its topic, its payload model and whether it carries
personal data (which bounds the topic's retention)."""

from __future__ import annotations

import builtins
from dataclasses import dataclass

from shared.events.payloads import EventPayload, LeadReceivedV1


class Topics:
    """Logical topic names; the bus adds the configured prefix. Key = lead id or client id."""

    LEADS = "vo.leads"
    PRIVACY = "vo.privacy"

    @staticmethod
    def dlq(topic: str) -> str:
        return f"{topic}.dlq"


# Topics that carry personal data get the bounded retention of the settings.
PERSONAL_DATA_TOPICS: frozenset[str] = frozenset({Topics.LEADS, Topics.PRIVACY})


@dataclass(frozen=True)
class EventSpec:
    type: str
    topic: str
    payload: builtins.type[EventPayload]
    producer: str
    description: str
    personal_data: bool


CATALOGUE: dict[str, EventSpec] = {
    spec.type: spec
    for spec in (
        EventSpec(
            type="lead.received.v1",
            topic=Topics.LEADS,
            payload=LeadReceivedV1,
            producer="ingest",
            description="A canonical lead was accepted (any source); subject = lead id.",
            personal_data=True,
        ),
    )
}


def spec_for(event_type: str) -> EventSpec:
    try:
        return CATALOGUE[event_type]
    except KeyError:
        raise KeyError(f"unknown event type {event_type!r}") from None


def all_topics() -> list[str]:
    """Every topic of the catalogue, with its DLQ."""
    topics = sorted({spec.topic for spec in CATALOGUE.values()} | PERSONAL_DATA_TOPICS)
    return topics + [Topics.dlq(topic) for topic in topics]
