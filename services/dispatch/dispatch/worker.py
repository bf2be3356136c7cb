"""Dispatch's worker: the outbox relay, the consumer of qualified leads, the privacy consumer
(erasure, export, objections, rectifications), the durable timers, webhook delivery (one shared
``httpx.AsyncClient``, created when the loop starts) and the re-publication of the calendars and
of the people directory. Everything runs on the runtime's settings, clock and outbox. The timer
and webhook loops sleep until their next due row and wake when one is committed
(``shared.db.wakeup``; the timers this process writes tell the timer loop when they fall due:
``dispatch.timers.hint``).

Dispatch owns the people directory and applies its changes in the request's own transaction:
it does not consume ``vo.access``."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence

import httpx

from dispatch.assignments.deadlines import timer_handlers
from dispatch.assignments.intake import qualified_handler
from dispatch.directory.calendar_events import republish_job
from dispatch.metrics import DispatchMetrics
from dispatch.models import WebhookDelivery, metadata
from dispatch.people.republish import republish_people_job
from dispatch.privacy.handlers import dispatch_eraser, suppression_handler
from dispatch.privacy.rectification import CLIENT_RECTIFIED, rectification_handler
from dispatch.settings import DispatchSettings
from dispatch.timers.hint import due_hint
from dispatch.timers.runner import HELD_ELSEWHERE_S, TimerLoop, TimerRunner
from dispatch.webhooks.delivery import WebhookSender, webhook_http_client
from dispatch.webhooks.handoff import WebhookHandoff
from shared.consumer import build_consumer
from shared.db.session import wakeups_of
from shared.events import Topics
from shared.jobs import PeriodicJob, StepLoop
from shared.privacy import CONTACT_SUPPRESSED, lead_scoped_exporter, privacy_consumer
from shared.runtime import Runtime
from shared.worker import Loop


def consumers(runtime: Runtime[DispatchSettings]) -> Sequence[Loop]:
    settings = runtime.settings
    metrics = DispatchMetrics(settings.service_name, runtime.metrics.registry)
    handoff = webhook_handoff(runtime)
    timers = TimerRunner(
        runtime.session_factory,
        settings,
        timer_handlers(settings, runtime.outbox, handoff),
        clock=runtime.clock,
        metrics=metrics,
    )

    # Timers this process writes reach the loop as a hint: no probe of the database per lead.
    hint = due_hint(wakeups_of(runtime.session_factory))
    timer_loop = TimerLoop(timers, hint, settings, runtime.clock)

    return [
        build_consumer(
            runtime,
            name="dispatch.leads",
            topics=[Topics.LEADS],
            handlers={"lead.qualified.v1": qualified_handler(runtime, handoff)},
        ),
        privacy_consumer(
            runtime,
            erase=dispatch_eraser(runtime.clock),
            export=lead_scoped_exporter(metadata),
            extra_handlers={
                CONTACT_SUPPRESSED: suppression_handler(runtime.clock),
                CLIENT_RECTIFIED: rectification_handler(settings, runtime.clock),
            },
        ),
        StepLoop(name="dispatch.timers", step=timer_loop.step, wakeup=hint.signal),
        webhook_loop(runtime, metrics, handoff),
        # Every calendar at start, then periodically: consumers can be rebuilt from events.
        PeriodicJob(
            name="dispatch.calendars",
            action=republish_job(runtime.session_factory, runtime.outbox, settings, runtime.clock),
            interval_s=settings.calendar_republish_interval_s,
            initial_delay_s=0.0,
        ),
        PeriodicJob(
            name="dispatch.people",
            action=republish_people_job(
                runtime.session_factory, runtime.outbox, settings, runtime.clock
            ),
            interval_s=settings.people_republish_interval_s,
            initial_delay_s=0.0,
        ),
    ]


def webhook_handoff(runtime: Runtime[DispatchSettings]) -> WebhookHandoff:
    """The queue of the messages this worker's units of work claim at birth for its sender."""
    settings = runtime.settings
    return WebhookHandoff(
        wakeups_of(runtime.session_factory).signal(WebhookDelivery.__tablename__),
        lease_s=settings.webhook_lease_s,
        capacity=4 * settings.webhook_batch_size,
    )


def webhook_loop(
    runtime: Runtime[DispatchSettings],
    metrics: DispatchMetrics | None = None,
    handoff: WebhookHandoff | None = None,
) -> StepLoop:
    settings = runtime.settings
    client: httpx.AsyncClient | None = None
    sender: WebhookSender | None = None

    async def step() -> float:
        nonlocal client, sender
        if client is None or sender is None:
            client = webhook_http_client(settings)
            sender = WebhookSender(
                runtime.session_factory,
                settings,
                client,
                outbox=runtime.outbox,
                clock=runtime.clock,
                metrics=metrics,
                handoff=handoff,
            )
        sent = await sender.send_due()
        if sent >= settings.webhook_batch_size:
            return 0.0
        return await _after_pass(sent, sender.pause(settings.webhook_poll_interval_s))

    async def close() -> None:
        nonlocal client, sender
        if client is not None:
            await client.aclose()
        client, sender = None, None

    return StepLoop(
        name="dispatch.webhooks",
        step=step,
        close=close,
        wakeup=wakeups_of(runtime.session_factory).signal(WebhookDelivery.__tablename__),
    )


async def _after_pass(done: int, pause: Awaitable[float]) -> float:
    """The pause after a pass that handled ``done`` rows (fewer than a batch)."""
    seconds = await pause
    return seconds if done else max(seconds, HELD_ELSEWHERE_S)
