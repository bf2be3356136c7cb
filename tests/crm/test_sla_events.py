"""From events to SLA facts: a lead posted on ingest and qualify's events reach crm's SLA
consumer, the lead's trace id is on the consumer's log lines, and the stage histograms reach the
worker's /metrics without personal data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.bus.embedded import EmbeddedBus
from shared.clock import utcnow
from shared.events import Envelope
from shared.settings import ServiceSettings
from tests.support.harness import System, eventually, run_system
from tests.support.logs import CapturedLogs

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
LEAD: dict[str, Any] = {
    "source": "api",
    "source_ref": "sla-trace-1",
    "contact": {
        "full_name": "Inès Marchand",
        "phone": "06 98 76 54 32",
        "email": "ines@example.fr",
    },
}


def _window() -> dict[str, str]:
    now = utcnow()
    return {
        "from": (now - timedelta(days=2)).isoformat(),
        "to": (now + timedelta(days=2)).isoformat(),
    }


async def _first_attempt(system: System) -> dict[str, Any] | None:
    response = await system.crm.get("/v1/sla/summary", params=_window())
    assert response.status_code == 200, response.text
    groups = response.json()["groups"]
    if not groups:
        return None
    stage: dict[str, Any] = next(
        item for item in groups[0]["stages"] if item["stage"] == "first_attempt"
    )
    return {"leads": groups[0]["leads"], **stage}


async def _publish(
    settings: ServiceSettings, event_type: str, lead_id: str, data: dict[str, Any]
) -> None:
    bus = EmbeddedBus(settings.embedded_bus_path)
    await bus.start()
    try:
        envelope = Envelope(source="/tests", type=event_type, subject=lead_id, data=data)
        await bus.publish(
            "vo.leads",
            key=envelope.to_key(),
            value=envelope.to_value(),
            headers=envelope.to_headers(),
        )
    finally:
        await bus.stop()


async def test_one_lead_is_followed_from_ingest_to_the_sla_facts(
    embedded_settings: dict[str, ServiceSettings], capsys: pytest.CaptureFixture[str]
) -> None:
    parent = f"00-{TRACE_ID}-b7ad6b7169203331-01"
    chosen = {name: embedded_settings[name] for name in ("ingest", "crm")}
    async with run_system(chosen) as system:
        captured = CapturedLogs(capsys)
        accepted = await system.ingest.post("/v1/leads", json=LEAD, headers={"traceparent": parent})
        assert accepted.status_code == 202, accepted.text
        lead_id = accepted.json()["id"]
        summary = await eventually(lambda: _first_attempt(system))
        assert summary["leads"] == 1
        assert summary["count"] == 0

        handled = [
            event
            for event in captured.events
            if event.get("event") == "sla.fact_updated" and event.get("lead_id") == lead_id
        ]
        assert handled, "the SLA consumer logged nothing for the lead"
        assert handled[0]["trace_id"] == TRACE_ID
        assert handled[0]["consumer"] == "crm.leads"
        assert handled[0]["event_type"] == "lead.received.v1"
        assert handled[0]["subject"] == lead_id

        received_at = datetime.fromisoformat(
            (await system.ingest.get(f"/v1/leads/{lead_id}")).json()["received_at"]
        ).astimezone(UTC)
        attempt = {
            "lead_id": lead_id,
            "attempt_id": "a-1",
            "operator_id": "op-7",
            "channel": "phone",
            "outcome": "reached",
            "attempted_at": (received_at + timedelta(minutes=3)).isoformat(),
        }
        await _publish(chosen["crm"], "lead.contact-attempted.v1", lead_id, attempt)
        # The same attempt published again under a new event id changes nothing.
        await _publish(chosen["crm"], "lead.contact-attempted.v1", lead_id, attempt)
        await eventually(lambda: _ended(system))
        await _publish(
            chosen["crm"],
            "lead.disqualified.v1",
            lead_id,
            {
                "lead_id": lead_id,
                "reason": "not_interested",
                "disqualified_at": (received_at + timedelta(minutes=9)).isoformat(),
                "operator_id": "op-7",
            },
        )
        funnel = await eventually(lambda: _disqualified(system))
        assert funnel["counts"]["first_attempt"] == 1
        assert funnel["counts"]["reached"] == 1

        worker = system.services["crm"].worker
        assert worker is not None
        metrics = worker.metrics.render().decode()
        first_attempt = 'service="crm",source="api",stage="first_attempt"} 1.0'
        reached = 'service="crm",source="api",stage="reached"} 1.0'
        assert "sla_stage_duration_business_minutes_count{" + first_attempt in metrics
        assert "sla_stage_duration_seconds_count{" + reached in metrics
        assert 'event_lag_seconds_count{consumer="crm.leads"' in metrics
        for personal in ("Inès", "Marchand", "+33698765432", "ines@", lead_id):
            assert personal not in metrics


async def _ended(system: System) -> bool:
    summary = await _first_attempt(system)
    return bool(summary and summary["count"] == 1)


async def _disqualified(system: System) -> dict[str, Any] | None:
    response = await system.crm.get("/v1/sla/funnel", params=_window())
    rows: list[dict[str, Any]] = response.json()["rows"]
    return next((row for row in rows if row["counts"]["disqualified"] == 1), None)


@pytest.mark.postgres
@pytest.mark.kafka
async def test_sla_facts_on_postgres_and_kafka(
    production_settings: dict[str, ServiceSettings], capsys: pytest.CaptureFixture[str]
) -> None:
    parent = f"00-{TRACE_ID}-b7ad6b7169203332-01"
    chosen = {name: production_settings[name] for name in ("ingest", "crm")}
    async with run_system(chosen) as system:
        captured = CapturedLogs(capsys)
        accepted = await system.ingest.post(
            "/v1/leads", json={**LEAD, "source_ref": "sla-kafka-1"}, headers={"traceparent": parent}
        )
        assert accepted.status_code == 202, accepted.text
        lead_id = accepted.json()["id"]
        summary = await eventually(lambda: _first_attempt(system), timeout_s=60)
        assert summary["leads"] == 1
        handled = [
            event
            for event in captured.events
            if event.get("event") == "sla.fact_updated" and event.get("lead_id") == lead_id
        ]
        assert handled
        assert handled[0]["trace_id"] == TRACE_ID
