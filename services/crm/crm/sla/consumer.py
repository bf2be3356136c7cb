"""The SLA consumer's wiring: its own consumer group, on the topics of the types it handles (the
lead events, the sites' calendars on ``vo.directory``, and the alerts' disabled webhooks)."""

from __future__ import annotations

from crm.alerts.handlers import alert_handlers
from crm.settings import CrmSettings
from crm.sla.handlers import CONSUMER_NAME, calendar_handlers, make_handler
from crm.sla.observations import handled_types
from crm.sla.stages import policy_from_settings
from shared.consumer import EventConsumer, build_consumer
from shared.events.catalogue import CATALOGUE
from shared.runtime import Runtime


def sla_consumer(runtime: Runtime[CrmSettings]) -> EventConsumer:
    policy = policy_from_settings(runtime.settings)
    handler = make_handler(policy, runtime.metrics, runtime.clock)
    handlers = {
        **dict.fromkeys(handled_types(sorted(CATALOGUE)), handler),
        **calendar_handlers(policy, runtime.clock),
        **alert_handlers(runtime.clock, runtime.metrics),
    }
    return build_consumer(
        runtime,
        name=CONSUMER_NAME,
        topics=sorted({CATALOGUE[event_type].topic for event_type in handlers}),
        handlers=handlers,
    )
