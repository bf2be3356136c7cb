"""Retention: prospects untouched for 3 years are erased; a dry run only counts; every run leaves
evidence; the daily job does not run twice in a day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm.privacy.retention import daily_run_due
from shared.db import create_engine, make_session_factory
from shared.settings import ServiceSettings
from tests.support.harness import System, eventually, run_system


def lead(ref: str, phone: str, received_at: datetime) -> dict[str, object]:
    return {
        "source": "leboncoin",
        "source_ref": ref,
        "received_at": received_at.isoformat(),
        "contact": {"full_name": f"Prospect {ref}", "phone": phone},
    }


async def _clients(system: System) -> int:
    total = 0
    for phone in ("0611111111", "0622222222"):
        items = (await system.crm.get("/v1/clients", params={"phone": phone})).json()["items"]
        total += len(items)
    return total


async def test_retention_dry_run_then_real_run(
    embedded_settings: dict[str, ServiceSettings],
) -> None:
    now = datetime.now(UTC)
    settings = {name: embedded_settings[name] for name in ("ingest", "crm")}
    async with run_system(settings) as system:
        await system.ingest.post(
            "/v1/leads", json=lead("old", "0611111111", now - timedelta(days=4 * 365))
        )
        await system.ingest.post(
            "/v1/leads", json=lead("new", "0622222222", now - timedelta(days=30))
        )
        await eventually(lambda: _has_two(system))

        dry = await system.crm.post("/v1/privacy/retention-runs", json={})
        assert dry.status_code == 201, dry.text
        assert dry.json()["dry_run"] is True
        assert dry.json()["clients_matched"] == 1
        assert dry.json()["erasures_requested"] == 0
        assert (await system.crm.get("/v1/privacy/erasure-requests")).json()["items"] == []

        real = await system.crm.post("/v1/privacy/retention-runs", json={"dry_run": False})
        assert real.json()["clients_matched"] == 1
        assert real.json()["erasures_requested"] == 1
        requests = (await system.crm.get("/v1/privacy/erasure-requests")).json()["items"]
        assert [item["reason"] for item in requests] == ["retention"]

        async def old_client_gone() -> bool:
            return await _clients(system) == 1

        await eventually(old_client_gone)
        runs = (await system.crm.get("/v1/privacy/retention-runs")).json()["items"]
        assert [run["dry_run"] for run in runs] == [False, True]
        assert all(run["finished_at"] for run in runs)

        engine = create_engine(embedded_settings["crm"].resolved_database_url())
        sessions = make_session_factory(engine)
        assert not await daily_run_due(sessions, now=datetime.now(UTC))
        assert await daily_run_due(sessions, now=datetime.now(UTC) + timedelta(days=1, minutes=1))
        await engine.dispose()


async def _has_two(system: System) -> bool:
    return await _clients(system) == 2
