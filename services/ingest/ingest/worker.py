"""Ingest's worker: the outbox relay, the Graph API fetcher, the IMAP poller, the inbound SMS
loop, the consumer of qualify's sent SMS, the privacy consumer (erasure, export, rectification)
and the raw-input retention purge."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import httpx

from ingest.conversations.handlers import MESSAGE_SENT, sms_sent_handler
from ingest.conversations.sms import SmsInbox
from ingest.imap.poller import ImapPoller
from ingest.models import FacebookFetch, metadata
from ingest.privacy.rectification import CLIENT_RECTIFIED, rectification_handler
from ingest.raw_inputs.retention import purge_raw_inputs
from ingest.settings import IngestSettings
from ingest.sources.facebook.fetcher import graph_client, run_due
from shared.access.consumer import access_consumer
from shared.consumer import PATIENT_BATCH_WAIT_S, EventConsumer, build_consumer
from shared.db.session import wakeups_of
from shared.events import Topics
from shared.jobs import PeriodicJob, StepLoop
from shared.privacy import lead_scoped_eraser, lead_scoped_exporter, privacy_consumer
from shared.runtime import Runtime
from shared.worker import Loop

# Ingest's canonical lead table is keyed by ``id``; the others by ``lead_id``.
LEAD_KEYS = {"lead": "id"}


def consumers(runtime: Runtime[IngestSettings]) -> Sequence[Loop]:
    loops: list[Loop] = [
        access_consumer(runtime),
        facebook_fetcher(runtime),
        privacy_consumer(
            runtime,
            erase=lead_scoped_eraser(metadata, key_columns=LEAD_KEYS),
            export=lead_scoped_exporter(metadata, key_columns=LEAD_KEYS),
            extra_handlers={CLIENT_RECTIFIED: rectification_handler()},
        ),
        raw_input_purge(runtime),
        sent_sms_consumer(runtime),
    ]
    if runtime.settings.imap_host:
        poller = ImapPoller(runtime)
        loops.append(StepLoop(name="ingest.imap", step=poller.step, close=poller.close))
    if runtime.settings.ovh_configured:
        inbox = SmsInbox(runtime)
        loops.append(StepLoop(name="ingest.sms-inbound", step=inbox.step, close=inbox.close))
    return loops


def sent_sms_consumer(runtime: Runtime[IngestSettings]) -> EventConsumer:
    """qualify's ``lead.message-sent.v1``: which lead each SMS went to (inbound SMS matching)."""
    key = runtime.settings.privacy_hmac_key.get_secret_value().encode()
    return build_consumer(
        runtime,
        name="ingest.conversations",
        topics=[Topics.LEADS],
        handlers={MESSAGE_SENT: sms_sent_handler(key)},
        # Off the critical path (an SMS reply comes minutes later): it skips every other lead
        # event, and fetching them one by one was a quarter of this worker's CPU.
        batch_wait_s=PATIENT_BATCH_WAIT_S,
    )


def raw_input_purge(runtime: Runtime[IngestSettings]) -> PeriodicJob:
    """Raw payloads are kept INGEST_RAW_INPUT_RETENTION_DAYS (30 by default), then deleted."""
    retention = timedelta(days=runtime.settings.raw_input_retention_days)

    async def purge() -> None:
        await purge_raw_inputs(runtime.session_factory, retention=retention, now=runtime.clock())

    return PeriodicJob(name="ingest.raw-input-retention", action=purge, interval_s=3600)


def facebook_fetcher(runtime: Runtime[IngestSettings]) -> StepLoop:
    settings = runtime.settings
    client: httpx.AsyncClient | None = None

    async def step() -> float:
        nonlocal client
        if client is None:
            client = graph_client(settings)
        tried = await run_due(runtime, client)
        return 0.0 if tried else settings.facebook_fetch_poll_interval_s

    async def close() -> None:
        nonlocal client
        if client is not None:
            await client.aclose()
            client = None

    return StepLoop(
        name="ingest.facebook-fetch",
        step=step,
        close=close,
        wakeup=wakeups_of(runtime.session_factory).signal(FacebookFetch.__tablename__),
    )
