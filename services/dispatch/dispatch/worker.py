"""Dispatch's worker: the outbox relay, the consumer of qualified leads, the durable timers and
webhook delivery (one shared ``httpx.AsyncClient``, created when the loop starts). Everything
runs on the runtime's settings, clock and outbox."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from dispatch.assignments.deadlines import timer_handlers
from dispatch.assignments.intake import qualified_handler
from dispatch.metrics import DispatchMetrics
from dispatch.models import metadata
from dispatch.privacy.handlers import dispatch_eraser, suppression_handler
from dispatch.settings import DispatchSettings
from dispatch.timers.runner import TimerRunner
from dispatch.webhooks.delivery import WebhookSender
from shared.consumer import build_consumer
from shared.events import Topics
from shared.jobs import StepLoop
from shared.privacy import CONTACT_SUPPRESSED, lead_scoped_exporter, privacy_consumer
from shared.runtime import Runtime
from shared.worker import Loop


def consumers(runtime: Runtime[DispatchSettings]) -> Sequence[Loop]:
    settings = runtime.settings
    metrics = DispatchMetrics(settings.service_name, runtime.metrics.registry)
    timers = TimerRunner(
        runtime.session_factory,
        settings,
        timer_handlers(settings, runtime.outbox),
        clock=runtime.clock,
        metrics=metrics,
    )

    async def fire_timers() -> float:
        fired = await timers.fire_due()
        return 0.0 if fired >= settings.timer_batch_size else settings.timer_poll_interval_s

    return [
        build_consumer(
            runtime,
            name="dispatch.leads",
            topics=[Topics.LEADS],
            handlers={"lead.qualified.v1": qualified_handler(runtime)},
        ),
        privacy_consumer(
            runtime,
            erase=dispatch_eraser(runtime.clock),
            export=lead_scoped_exporter(metadata),
            extra_handlers={CONTACT_SUPPRESSED: suppression_handler(runtime.clock)},
        ),
        StepLoop(name="dispatch.timers", step=fire_timers),
        webhook_loop(runtime, metrics),
    ]


def webhook_loop(
    runtime: Runtime[DispatchSettings], metrics: DispatchMetrics | None = None
) -> StepLoop:
    settings = runtime.settings
    client: httpx.AsyncClient | None = None
    sender: WebhookSender | None = None

    async def step() -> float:
        nonlocal client, sender
        if client is None or sender is None:
            client = httpx.AsyncClient(
                timeout=settings.webhook_timeout_s,
                follow_redirects=False,
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            )
            sender = WebhookSender(
                runtime.session_factory,
                settings,
                client,
                outbox=runtime.outbox,
                clock=runtime.clock,
                metrics=metrics,
            )
        sent = await sender.send_due()
        return 0.0 if sent >= settings.webhook_batch_size else settings.webhook_poll_interval_s

    async def close() -> None:
        nonlocal client, sender
        if client is not None:
            await client.aclose()
        client, sender = None, None

    return StepLoop(name="dispatch.webhooks", step=step, close=close)
