"""The managers' alerts feed: leads whose SLA stage is at risk (not yet late) and sellers'
webhooks dispatch disabled (``seller.webhook-disabled.v1``), oldest first with a cursor; managers
and admins only; the worker's gauge of open stages at risk / overdue; sales counters."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from crm.alerts.handlers import alert_handlers
from crm.alerts.jobs import count_open_stages
from crm.sla.handlers import make_handler
from crm.sla.observations import Observation
from crm.sla.stages import SlaPolicy
from shared.db import session_scope
from shared.events import Envelope
from shared.events.payloads import LeadWonV2, SellerWebhookDisabledV1
from tests.crm.conftest import CrmFactory, record, runtime_of, store_role_token
from tests.support.clock import Clock
from tests.support.harness import RunningService

ALWAYS = "mon-sun 00:00-24:00"


async def disable_webhook(service: RunningService, seller: str, at: datetime) -> str:
    """A ``seller.webhook-disabled.v1`` from dispatch, handled as crm's consumer does."""
    runtime = runtime_of(service)
    envelope = Envelope(
        source="/dispatch",
        type="seller.webhook-disabled.v1",
        subject=seller,
        data=SellerWebhookDisabledV1(
            seller_id=seller, reason="gone", consecutive_failures=1, disabled_at=at
        ).model_dump(mode="json"),
    )
    handler = alert_handlers(runtime.clock, runtime.metrics)["seller.webhook-disabled.v1"]
    for _ in range(2):  # a re-delivery of the same event adds nothing
        async with session_scope(runtime.session_factory) as session:
            await handler(session, envelope)
    return envelope.id


def sample(service: RunningService, name: str, labels: dict[str, str]) -> float | None:
    value = runtime_of(service).metrics.registry.get_sample_value(name, labels)
    return value


async def test_the_feed_lists_leads_at_risk_and_disabled_webhooks_with_a_cursor(
    crm: CrmFactory,
) -> None:
    clock = Clock()
    async with crm.running(clock=clock, call_centre_hours=ALWAYS) as system:
        service = system.services["crm"]
        now = clock.now
        # first_attempt: 15 minutes of target, at risk from 12 (0.8).
        await record(
            service,
            [
                Observation("R-old", {"received": now - timedelta(minutes=14)}, source="api"),
                Observation("R-new", {"received": now - timedelta(minutes=13)}, source="api"),
                Observation("fresh", {"received": now - timedelta(minutes=5)}, source="api"),
                Observation("late", {"received": now - timedelta(minutes=20)}, source="api"),
            ],
        )
        event_id = await disable_webhook(service, "s-9", now - timedelta(minutes=1))
        await disable_webhook(service, "s-old", now - timedelta(days=8))  # out of the window

        whole = await system.crm.get("/v1/alerts")
        assert whole.status_code == 200, whole.text
        body = whole.json()
        assert [(item["kind"], item["lead_id"] or item["seller_id"]) for item in body["items"]] == [
            ("lead_at_risk", "R-old"),
            ("lead_at_risk", "R-new"),
            ("webhook_disabled", "s-9"),
        ]
        first = body["items"][0]
        assert first["stage"] == "first_attempt"
        assert first["target_minutes"] == 15
        assert datetime.fromisoformat(first["due_at"]) == now + timedelta(minutes=1)
        assert body["items"][2]["id"] == f"webhook_disabled:{event_id}"
        assert body["items"][2]["reason"] == "gone"
        assert body["next_cursor"] is None

        # One at a time through the cursor: the same items, in the same order.
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 1}
            if cursor:
                params["cursor"] = cursor
            page = (await system.crm.get("/v1/alerts", params=params)).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [item["id"] for item in body["items"]]

        only = await system.crm.get("/v1/alerts", params={"kind": "webhook_disabled"})
        assert [item["seller_id"] for item in only.json()["items"]] == ["s-9"]

        # Two minutes later both leads are late (in /v1/sla/breaches), no longer at risk.
        clock.advance(minutes=2)
        later = (await system.crm.get("/v1/alerts", params={"kind": "lead_at_risk"})).json()
        assert later["items"] == []


async def test_the_feed_is_for_managers_and_refuses_bad_input(crm: CrmFactory) -> None:
    async with crm.running() as system:
        service = system.services["crm"]
        operator = await store_role_token(service, "operator")
        manager = await store_role_token(service, "manager")
        refused = await system.crm.get(
            "/v1/alerts", headers={"Authorization": f"Bearer {operator}"}
        )
        assert refused.status_code == 403
        allowed = await system.crm.get("/v1/alerts", headers={"Authorization": f"Bearer {manager}"})
        assert allowed.status_code == 200
        for params in ({"kind": "fire"}, {"limit": 0}, {"cursor": "nope"}):
            bad = await system.crm.get("/v1/alerts", params=params)
            assert bad.status_code == 422, params
            assert bad.headers["content-type"].startswith("application/problem+json")


async def test_the_worker_counts_open_stages_and_sales_for_prometheus(crm: CrmFactory) -> None:
    clock = Clock()
    async with crm.running(clock=clock, call_centre_hours=ALWAYS) as system:
        service = system.services["crm"]
        runtime = runtime_of(service)
        now = clock.now
        await record(
            service,
            [
                Observation("R1", {"received": now - timedelta(minutes=13)}, source="api"),
                Observation("O1", {"received": now - timedelta(minutes=30)}, source="api"),
            ],
        )
        await count_open_stages(runtime, runtime.component(SlaPolicy))
        labels = {"service": "crm", "stage": "first_attempt"}
        assert sample(service, "sla_open_stages", {**labels, "state": "at_risk"}) == 1
        assert sample(service, "sla_open_stages", {**labels, "state": "overdue"}) == 1

        handler = make_handler(runtime.component(SlaPolicy), runtime.metrics, runtime.clock)
        sale = Envelope(
            source="/dispatch",
            type="lead.won.v2",
            subject="R1",
            data=LeadWonV2(
                lead_id="R1",
                assignment_id="a-1",
                seller_id="s-1",
                sale_price_eur=12_500,
                won_at=now,
            ).model_dump(mode="json"),
        )
        for _ in range(2):  # the second delivery counts nothing more
            async with session_scope(runtime.session_factory) as session:
                await handler(session, sale)
        sales = {"service": "crm", "source": "api"}
        won = {**sales, "outcome": "won"}
        assert sample(service, "sla_leads_closed_total", won) == 1
        assert sample(service, "sales_revenue_eur_total", sales) == 12_500
