"""Qualify's worker: the outbox relay, the queue's consumer of lead events, erasure."""

from __future__ import annotations

from collections.abc import Sequence

from qualify.models import metadata
from qualify.policy import Policy
from qualify.queue.handlers import lead_received_handler
from qualify.settings import QualifySettings
from qualify.suppression.handlers import on_contact_suppressed
from shared.consumer import EventConsumer, build_consumer
from shared.events import Topics
from shared.privacy import (
    CONTACT_SUPPRESSED,
    lead_scoped_eraser,
    lead_scoped_exporter,
    privacy_consumer,
)
from shared.runtime import Runtime


def consumers(runtime: Runtime[QualifySettings]) -> Sequence[EventConsumer]:
    policy = Policy.from_settings(runtime.settings)
    return [
        build_consumer(
            runtime,
            name="qualify.queue",
            topics=[Topics.LEADS],
            handlers={"lead.received.v1": lead_received_handler(policy, runtime.clock)},
        ),
        privacy_consumer(
            runtime,
            erase=lead_scoped_eraser(metadata),
            export=lead_scoped_exporter(metadata),
            extra_handlers={CONTACT_SUPPRESSED: on_contact_suppressed},
        ),
    ]
