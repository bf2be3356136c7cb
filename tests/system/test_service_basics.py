"""What every service offers: health, readiness, metrics, trace context, problem+json errors,
roles, the token CLI. Runs on the embedded default (SQLite + embedded bus)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared.auth import store_token
from shared.bus.embedded import EmbeddedBus
from shared.db import create_engine, make_session_factory, session_scope
from shared.settings import ServiceSettings
from tests.support.harness import SERVICES, eventually, migrate, run_app, run_system, settings_for

ROOT = Path(__file__).resolve().parents[2]
PROBLEM = "application/problem+json"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"

LEAD: dict[str, Any] = {
    "source": "api",
    "source_ref": "basics-1",
    "contact": {"full_name": "Zoé Lemaire", "phone": "07 55 44 33 22", "email": "zoe@example.fr"},
}


async def test_health_readiness_and_metrics_on_every_service(
    embedded_settings: dict[str, ServiceSettings],
) -> None:
    async with run_system(embedded_settings, workers=False) as system:
        for name in SERVICES:
            client = system.client(name)
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            ready = await client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json() == {"status": "ready", "database": "ok", "bus": "ok"}
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200
            assert f'http_requests_total{{method="GET",route="/readyz",service="{name}"' in (
                metrics.text
            )


async def test_readiness_reports_an_unreachable_broker(tmp_path: Path) -> None:
    settings = settings_for(
        "qualify",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'q.db'}",
        bus="kafka",
        kafka_bootstrap_servers="127.0.0.1:1",
    )
    await migrate(settings)
    async with run_app(settings) as service:
        response = await service.client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["bus"] != "ok"


async def test_trace_context_flows_from_http_into_the_event(
    embedded_settings: dict[str, ServiceSettings],
) -> None:
    parent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    async with run_system({"ingest": embedded_settings["ingest"]}) as system:
        response = await system.ingest.post("/v1/leads", json=LEAD, headers={"traceparent": parent})
        assert response.status_code == 202
        assert TRACE_ID in response.headers["traceparent"]
        bus = EmbeddedBus(embedded_settings["ingest"].embedded_bus_path)
        await bus.start()
        consumer = bus.consumer(group_id="trace-check", topics=["vo.leads"])
        await consumer.start()
        try:
            records = await eventually(lambda: consumer.poll(timeout_s=0.2, max_records=10))
        finally:
            await consumer.stop()
            await bus.stop()
        headers = dict(records[0].headers)
        assert TRACE_ID in headers["traceparent"].decode()
        # Personal data stays out of metric labels.
        metrics = (await system.ingest.get("/metrics")).text
        for value in ("Zoé", "+33755443322", "zoe@"):
            assert value not in metrics


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"source": "api"}, {"source_ref", "contact"}),
        ({**LEAD, "source": "minitel"}, {"source"}),
        ({**LEAD, "source_ref": 42}, {"source_ref"}),
        ({**LEAD, "contact": {"phone": "123"}}, {"contact.phone"}),
        ({**LEAD, "contact": {"email": "not-an-email"}}, {"contact.email"}),
        (
            {**LEAD, "vehicle": {"year": "last year", "price_eur": -5}},
            {"vehicle.year", "vehicle.price_eur"},
        ),
        ({**LEAD, "unexpected": True}, {"unexpected"}),
        ([1, 2, 3], {"body"}),
    ],
)
async def test_invalid_leads_are_422_problems_naming_each_field(
    embedded_settings: dict[str, ServiceSettings], body: Any, fields: set[str]
) -> None:
    async with run_system({"ingest": embedded_settings["ingest"]}, workers=False) as system:
        response = await system.ingest.post("/v1/leads", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == "/problems/validation-error"
    assert {error["field"] for error in problem["errors"]} >= fields
    assert "123" not in response.text.replace('"status":422', "")  # inputs are never echoed


async def test_malformed_json_and_oversized_bodies(tmp_path: Path) -> None:
    settings = settings_for(
        "ingest",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'i.db'}",
        embedded_bus_path=tmp_path / "bus.db",
        max_body_bytes=2048,
    )
    async with run_system({"ingest": settings}, workers=False) as system:
        malformed = await system.ingest.post(
            "/v1/leads", content=b'{"source": ', headers={"content-type": "application/json"}
        )
        assert malformed.status_code == 422
        assert malformed.headers["content-type"] == PROBLEM

        big = {**LEAD, "message": "x" * 4096}
        declared = await system.ingest.post("/v1/leads", json=big)
        assert declared.status_code == 413
        assert declared.headers["content-type"] == PROBLEM

        async def chunks() -> Any:  # no Content-Length: the limit still holds while streaming
            for _ in range(8):
                yield b" " * 512

        streamed = await system.ingest.post(
            "/v1/leads", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        assert streamed.json()["type"] == "/problems/payload-too-large"

        unknown = await system.ingest.get("/v1/nothing-here")
        assert unknown.status_code == 404
        assert unknown.headers["content-type"] == PROBLEM
        wrong_method = await system.ingest.delete("/v1/leads")
        assert wrong_method.status_code == 405
        assert wrong_method.headers["content-type"] == PROBLEM


async def test_roles_are_enforced(embedded_settings: dict[str, ServiceSettings]) -> None:
    settings = embedded_settings["qualify"]
    async with run_system({"qualify": settings}, workers=False) as system:
        engine = create_engine(settings.resolved_database_url())
        async with session_scope(make_session_factory(engine)) as session:
            await store_token(
                session,
                SERVICES["qualify"].infra.api_token,
                token="vo_seller",
                name="s",
                roles=["seller"],
            )
        await engine.dispose()
        async with system.client_as("qualify", None) as anonymous:
            assert (await anonymous.get("/v1/queue")).status_code == 401
            wrong = await anonymous.get("/v1/queue", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            seller = await anonymous.get("/v1/queue", headers={"Authorization": "Bearer vo_seller"})
            assert seller.status_code == 403
            assert seller.headers["content-type"] == PROBLEM


async def test_token_cli_stores_a_hash_that_authenticates(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"
    settings = settings_for("crm", database_url=url, embedded_bus_path=tmp_path / "bus.db")
    await migrate(settings)
    completed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "crm", "create-token", "--name", "alice", "--roles", "manager"],
        env={**os.environ, "CRM_DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=60,
    )
    token = completed.stdout.strip()
    assert token.startswith("vo_")
    engine = create_engine(url)
    async with engine.connect() as connection:
        stored = (await connection.exec_driver_sql("SELECT token_hash FROM api_token")).scalars()
        assert token not in list(stored)  # only the hash is stored
    await engine.dispose()
    async with run_app(settings) as service:
        response = await service.client.get(
            "/v1/clients", headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 200


async def test_an_unreachable_database_is_a_503_problem(tmp_path: Path) -> None:
    settings = settings_for(
        "qualify",
        database_url="postgresql+asyncpg://vo:vo@127.0.0.1:1/nowhere",
        embedded_bus_path=tmp_path / "bus.db",
    )
    async with run_app(settings) as service:
        response = await service.client.get("/v1/queue")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["retry-after"] == "5"
