"""Dispatch and crm together on the bus (embedded; PostgreSQL and Kafka marked): a site created in
dispatch open all day reaches crm's SLA as ``site.calendar-changed.v1`` and a lead measured on
the default hours at night is measured again on it; a webhook dispatch disables reaches the
managers' alerts feed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from crm.sla.observations import Observation
from crm.sla.repository import SlaRepository
from shared.clock import utcnow
from shared.db import session_scope
from shared.events.payloads import SellerWebhookDisabledV1
from shared.settings import ServiceSettings
from tests.crm.conftest import record, runtime_of
from tests.support.harness import RunningService, System, eventually, run_system

PARIS = ZoneInfo("Europe/Paris")
NIGHT = datetime(2026, 11, 24, 2, 0, tzinfo=PARIS)
SITE = {"id": "night-shop", "name": "Night shop", "postcode": "69007"}


async def accepted_seconds(service: RunningService) -> tuple[int, int] | None:
    runtime = runtime_of(service)
    async with session_scope(runtime.session_factory) as session:
        fact = await SlaRepository.from_session(session).get("N1")
    if fact is None or fact["calendar_provisional"]:
        return None
    return fact["accepted_business_s"], fact["accepted_wall_s"]


async def alerts(system: System) -> list[dict[str, Any]] | None:
    response = await system.crm.get("/v1/alerts", params={"kind": "webhook_disabled"})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items or None


async def publish_disabled(system: System) -> None:
    """Dispatch's event, staged in crm's own outbox for brevity: its relay puts it on the bus
    as dispatch's would (the consumer reads the type, not the producer)."""
    runtime = runtime_of(system.services["crm"])
    payload = SellerWebhookDisabledV1(
        seller_id="s-7", reason="too_many_failures", consecutive_failures=8, disabled_at=utcnow()
    )
    async with session_scope(runtime.session_factory) as session:
        await runtime.outbox.stage(session, "seller.webhook-disabled.v1", "s-7", payload)


async def scenario(system: System) -> None:
    crm = system.services["crm"]
    await record(
        crm,
        [
            Observation("N1", {"received": NIGHT, "qualified": NIGHT}, site="night-shop"),
            Observation("N1", {"offered": NIGHT}, site="night-shop", seller_id="s-1"),
            Observation("N1", {"accepted": NIGHT + timedelta(minutes=4)}, seller_id="s-1"),
        ],
    )
    created = await system.client("dispatch").post(
        "/v1/sites", json={**SITE, "opening_hours": "mon-sun 00:00-24:00"}
    )
    assert created.status_code == 201, created.text
    measured = await eventually(lambda: accepted_seconds(crm), timeout_s=60)
    assert measured == (240, 240)  # business minutes = wall minutes at night

    await publish_disabled(system)
    [alert] = await eventually(lambda: alerts(system), timeout_s=60)
    assert (alert["seller_id"], alert["reason"]) == ("s-7", "too_many_failures")


async def test_calendars_and_disabled_webhooks_reach_crm_on_the_embedded_bus(
    embedded_settings: dict[str, ServiceSettings],
) -> None:
    chosen = {name: embedded_settings[name] for name in ("dispatch", "crm")}
    async with run_system(chosen) as system:
        await scenario(system)


@pytest.mark.postgres
@pytest.mark.kafka
async def test_calendars_and_disabled_webhooks_reach_crm_on_postgres_and_kafka(
    production_settings: dict[str, ServiceSettings],
) -> None:
    chosen = {name: production_settings[name] for name in ("dispatch", "crm")}
    async with run_system(chosen) as system:
        await scenario(system)
