"""CRM's worker: the outbox relay and the clients' consumer of lead events."""

from __future__ import annotations

from collections.abc import Sequence

from crm.clients.handlers import on_lead_received
from shared.consumer import EventConsumer, build_consumer
from shared.events import Topics
from shared.runtime import Runtime


def consumers(runtime: Runtime) -> Sequence[EventConsumer]:
    return [
        build_consumer(
            runtime,
            name="crm.clients",
            topics=[Topics.LEADS],
            handlers={"lead.received.v1": on_lead_received},
        )
    ]
