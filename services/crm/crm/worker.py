"""CRM's worker: the outbox relay, the access consumer (people and tokens), one consumer per topic
of the events crm follows (lead events: clients and timeline, opt-outs, SLA facts, alerts; the
sites' calendars), the privacy consumer and the periodic jobs (retention, the open stages gauge,
the re-ask of erasures waiting on a service)."""

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
from crm.sla.consumer import sla_handlers
from shared.access.consumer import access_consumer
from shared.consumer import (
    PATIENT_BATCH_WAIT_S,
    EventConsumer,
    Handler,
    build_consumer,
    merge_handlers,
)
from shared.events.catalogue import CATALOGUE, Topics
from shared.privacy import ERASURE_COMPLETED, EXPORT_PROVIDED, privacy_consumer
from shared.runtime import Runtime
from shared.worker import Loop


def consumers(runtime: Runtime[CrmSettings]) -> Sequence[Loop]:
    return [
        access_consumer(runtime),
        *event_consumers(runtime),
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


def client_handlers(runtime: Runtime[CrmSettings]) -> dict[str, Handler]:
    """The person of a new lead, then its timeline; an opt-out becomes an objection."""
    return {
        "lead.received.v1": lead_received_handler(runtime.clock),
        **dict.fromkeys(TIMELINE_EVENT_TYPES, on_lead_event),
        OPTED_OUT: opted_out_handler(runtime),
    }


def consumer_name(topic: str) -> str:
    """``vo.leads`` is read by ``crm.leads``, ``vo.directory`` by ``crm.directory``."""
    return f"crm.{topic.removeprefix('vo.')}"


def event_consumers(runtime: Runtime[CrmSettings]) -> list[EventConsumer]:
    """One pass over each topic (one consumer group per topic): an event's handlers (its client
    and timeline entry, its SLA fact) run in one transaction, with one ``processed_event`` row.
    Two groups reading the same events paid the bookkeeping (claims, erased subjects, commits,
    offsets) twice."""
    handlers = merge_handlers(client_handlers(runtime), sla_handlers(runtime))
    by_topic: dict[str, dict[str, Handler]] = {}
    for event_type, handler in handlers.items():
        by_topic.setdefault(CATALOGUE[event_type].topic, {})[event_type] = handler
    return [
        build_consumer(
            runtime,
            name=consumer_name(topic),
            topics=[topic],
            handlers=handled,
            # crm records what happened, for people who read it later: its lead events wait up
            # to half a second and share one transaction per batch (claims, erased check,
            # commit), where a batch per event paid those round trips for each.
            batch_wait_s=PATIENT_BATCH_WAIT_S if topic == Topics.LEADS else 0.0,
        )
        for topic, handled in sorted(by_topic.items())
    ]
