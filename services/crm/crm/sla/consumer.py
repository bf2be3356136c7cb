"""The SLA consumer's wiring: its own consumer group, on the topics of the types it handles."""

from __future__ import annotations

from crm.settings import CrmSettings
from crm.sla.handlers import CONSUMER_NAME, make_handler
from crm.sla.observations import handled_types
from crm.sla.stages import policy_from_settings
from shared.consumer import EventConsumer, build_consumer
from shared.events.catalogue import CATALOGUE
from shared.runtime import Runtime


def sla_consumer(runtime: Runtime[CrmSettings]) -> EventConsumer:
    handler = make_handler(policy_from_settings(runtime.settings), runtime.metrics, runtime.clock)
    types = handled_types(sorted(CATALOGUE))
    return build_consumer(
        runtime,
        name=CONSUMER_NAME,
        topics=sorted({CATALOGUE[event_type].topic for event_type in types}),
        handlers=dict.fromkeys(types, handler),
    )
