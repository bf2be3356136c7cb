"""CRM's worker: the outbox relay and the clients' consumer of lead events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crm.clients.handlers import on_lead_received
from crm.clients.timeline import TIMELINE_EVENT_TYPES, on_lead_event
from crm.privacy.exports import export_client_data
from crm.privacy.handlers import completion_handler, on_export_provided
from crm.privacy.jobs import retention_job
from crm.privacy.service import erase_client_data
from crm.sla.consumer import sla_consumer
from shared.consumer import build_consumer
from shared.events import Topics
from shared.privacy import ERASURE_COMPLETED, EXPORT_PROVIDED, privacy_consumer
from shared.runtime import Runtime
from shared.worker import Loop


def consumers(runtime: Runtime[Any]) -> Sequence[Loop]:
    return [
        build_consumer(
            runtime,
            name="crm.clients",
            topics=[Topics.LEADS],
            handlers={
                "lead.received.v1": on_lead_received,
                **dict.fromkeys(TIMELINE_EVENT_TYPES, on_lead_event),
            },
        ),
        sla_consumer(runtime),
        privacy_consumer(
            runtime,
            erase=erase_client_data,
            export=export_client_data,
            extra_handlers={
                ERASURE_COMPLETED: completion_handler(runtime.bus),
                EXPORT_PROVIDED: on_export_provided,
            },
        ),
        retention_job(runtime),
    ]
