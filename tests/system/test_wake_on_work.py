"""Wake on work, end to end: with every fallback poll at a minute (outbox relays, webhook sender,
timers), a lead still goes from ingest's POST to the sellers' tool in seconds, because each
commit that leaves work wakes the loop that does it: through the database from another process
(here: another runtime, another engine; PostgreSQL LISTEN/NOTIFY, SQLite's data_version) and by
an in-process signal inside a worker (dispatch's consumer queueing a webhook)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from shared.settings import ServiceSettings
from tests.support.harness import eventually, run_system
from tests.support.http_server import serve
from tests.system.lead_flow import (
    ALWAYS,
    DISPATCH_QUIET,
    WebhookReceiver,
    full_web_pool,
    post_lead,
    qualify_lead,
    queued,
)

FALLBACK_S = 60.0
# Far below one fallback poll: a hop that waited for its poll would miss it.
HOP_S = 15.0


def with_slow_polls(settings: dict[str, ServiceSettings]) -> dict[str, ServiceSettings]:
    slow: dict[str, ServiceSettings] = {}
    for name, values in settings.items():
        update: dict[str, Any] = {"outbox_poll_interval_s": FALLBACK_S}
        if name == "dispatch":
            update |= {
                "webhook_poll_interval_s": FALLBACK_S,
                "timer_poll_interval_s": FALLBACK_S,
                "full_web_hours": ALWAYS,
                **DISPATCH_QUIET,
            }
        slow[name] = values.model_copy(update=update)
    return slow


async def check_a_lead_flows_without_waiting_for_polls(
    settings: dict[str, ServiceSettings],
) -> None:
    receiver = WebhookReceiver()
    async with serve(receiver) as hook_base, run_system(with_slow_polls(settings)) as system:
        await full_web_pool(system.client("dispatch"), f"{hook_base}/hook")
        started = time.monotonic()
        lead_id = await post_lead(system.ingest, "wake", 1)

        async def in_queue() -> bool:
            return lead_id in await queued(system.qualify)

        await eventually(in_queue, timeout_s=HOP_S)
        visible = time.monotonic()
        await qualify_lead(system.qualify, lead_id)

        async def offered() -> bool:
            return any(hook.lead_id == lead_id for hook in receiver.of_type("assignment.offered"))

        await eventually(offered, timeout_s=HOP_S)
        done = time.monotonic()
    assert visible - started < HOP_S
    assert done - visible < HOP_S
    assert len(receiver.of_type("assignment.offered")) == 1


async def test_a_lead_flows_without_waiting_for_polls_embedded(
    embedded_settings: dict[str, ServiceSettings],
) -> None:
    await check_a_lead_flows_without_waiting_for_polls(embedded_settings)


@pytest.mark.postgres
@pytest.mark.kafka
async def test_a_lead_flows_without_waiting_for_polls_on_postgres_and_kafka(
    production_settings: dict[str, ServiceSettings],
) -> None:
    await check_a_lead_flows_without_waiting_for_polls(production_settings)
