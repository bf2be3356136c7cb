"""CRM's worker: the outbox relay, the consumers (clients, SLA, privacy) and the periodic jobs
(retention, the re-ask of erasures waiting on a service)."""

from __future__ import annotations

from collections.abc import Sequence

from crm.alerts.jobs import open_stages_job
from crm.clients.handlers import lead_received_handler
from crm.clients.timeline import TIMELINE_EVENT_TYPES, on_lead_event
from crm.privacy.exports import export_client_data
from crm.privacy.handlers import completion_handler, export_provided_handler
from crm.privacy.jobs import erasure_reask_job, retention_job
from crm.privacy.opt_out import OPTED_OUT, opted_out_handler
from crm.privacy.service import erase_client_data
from crm.settings import CrmSettings
from crm.sla.consumer import sla_consumer
from shared.access.consumer import access_consumer
from shared.consumer import build_consumer
from shared.events import Topics
from shared.privacy import ERASURE_COMPLETED, EXPORT_PROVIDED, privacy_consumer
from shared.runtime import Runtime
from shared.worker import Loop


def consumers(runtime: Runtime[CrmSettings]) -> Sequence[Loop]:
    return [
        access_consumer(runtime),
        build_consumer(
            runtime,
            name="crm.clients",
            topics=[Topics.LEADS],
            handlers={
                "lead.received.v1": lead_received_handler(runtime.clock),
                **dict.fromkeys(TIMELINE_EVENT_TYPES, on_lead_event),
                OPTED_OUT: opted_out_handler(runtime),
            },
        ),
        sla_consumer(runtime),
        privacy_consumer(
            runtime,
            erase=erase_client_data,
            export=export_client_data,
            extra_handlers={
                ERASURE_COMPLETED: completion_handler(runtime.bus, runtime.clock),
                EXPORT_PROVIDED: export_provided_handler(runtime.clock),
            },
        ),
        retention_job(runtime),
        open_stages_job(runtime),
        erasure_reask_job(runtime),
    ]
