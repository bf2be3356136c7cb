"""The SLA's handlers, by event type: the lead events (each updates the lead's ``sla_fact`` row),
the sites' calendars on ``vo.directory``, and the alerts' disabled webhooks. They run in crm's
consumers of those topics (``crm/worker.py``): a lead event's SLA handler in the same transaction
as the clients' handlers of that event."""

from __future__ import annotations

from crm.alerts.handlers import alert_handlers
from crm.settings import CrmSettings
from crm.sla.handlers import calendar_handlers, make_handler
from crm.sla.observations import handled_types
from crm.sla.stages import policy_from_settings
from shared.consumer import Handler
from shared.events.catalogue import CATALOGUE
from shared.runtime import Runtime


def sla_handlers(runtime: Runtime[CrmSettings]) -> dict[str, Handler]:
    policy = policy_from_settings(runtime.settings)
    handler = make_handler(policy, runtime.metrics, runtime.clock)
    return {
        **dict.fromkeys(handled_types(sorted(CATALOGUE)), handler),
        **calendar_handlers(policy, runtime.clock),
        **alert_handlers(runtime.clock, runtime.metrics),
    }
