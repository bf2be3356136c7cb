"""The dispatch worker end to end on the embedded bus: a ``lead.qualified.v1`` event is consumed
(idempotently), the lead is offered, the offer webhook is delivered by the worker's shared HTTP
client to a real receiver, and the events leave through the outbox."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from dispatch.models import Assignment, DispatchLead
from shared.bus.factory import build_bus
from shared.events import Envelope, Topics
from shared.events.payloads import ContactV1, LeadQualifiedV1
from shared.tracing import trace_id_of
from tests.dispatch.conftest import Receiver, dispatch_settings, start_dispatch
from tests.support.clock import Clock
from tests.support.harness import eventually, run_worker

TRACEPARENT = "00-5c0f8f6b3e7a4d0c9a1b2c3d4e5f6a7b-1a2b3c4d5e6f7a8b-01"


async def test_worker_consumes_qualified_leads_and_delivers_webhooks(
    tmp_path: Path, receiver: Receiver
) -> None:
    settings = dispatch_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'dispatch.db'}",
        embedded_bus_path=tmp_path / "bus.db",
        webhook_poll_interval_s=0.05,
        timer_poll_interval_s=0.05,
    )
    clock = Clock(datetime.now(UTC))  # the worker runs on real time
    async with start_dispatch(settings, clock) as api:
        await api.site(opening_hours="mon-sun 00:00-24:00")
        seller = await api.seller(
            "Web",
            mode="full_web",
            site_id=None,
            shifts="mon-sun 00:00-24:00",
            webhook_url=receiver.url("web"),
        )
        receiver.secrets["web"] = seller["webhook_secret"]
        lead_id = str(uuid.uuid4())
        payload = LeadQualifiedV1(
            lead_id=lead_id,
            source="facebook",
            received_at=clock.now - timedelta(minutes=5),
            qualified_at=clock.now,
            operator_id="op-1",
            contact=ContactV1(full_name="Jeanne Martin", phone="+33612345678"),
            intent="buy",
            channel="full_web",
        )
        bus = build_bus(settings)
        await bus.start()
        try:
            for _ in range(2):  # the same lead re-published under a new event id
                envelope = Envelope(
                    source="/vo-leads/qualify",
                    type="lead.qualified.v1",
                    subject=lead_id,
                    traceparent=TRACEPARENT,
                    data=payload.model_dump(mode="json"),
                )
                await bus.publish(
                    Topics.LEADS,
                    key=envelope.to_key(),
                    value=envelope.to_value(),
                    headers=envelope.to_headers(),
                )
        finally:
            await bus.stop()
        async with run_worker(settings) as worker:

            async def delivered() -> bool:
                return bool(receiver.of("web"))

            await eventually(delivered, timeout_s=20)

            async def relayed() -> bool:
                return await api.count(api.runtime.infra.outbox_event) == 0

            await eventually(relayed, timeout_s=20)

            async def counted() -> float | None:
                # Recorded after the attempt's transaction, a moment after the receiver saw it.
                return worker.metrics.registry.get_sample_value(
                    "dispatch_webhook_attempts_total",
                    {
                        "service": "dispatch",
                        "event_type": "assignment.offered",
                        "outcome": "delivered",
                    },
                )

            assert await eventually(counted, timeout_s=20) == 1
        [message] = receiver.of("web")
        assert message.event_type == "assignment.offered"
        # The lead's trace continues into the seller's tool.
        assert trace_id_of(message.traceparent) == trace_id_of(TRACEPARENT)
        assert message.payload["data"]["lead"]["lead_id"] == lead_id
        async with api.runtime.session_factory() as session:
            assert await session.scalar(select(func.count()).select_from(DispatchLead)) == 1
            assert await session.scalar(select(func.count()).select_from(Assignment)) == 1
