"""The do-not-contact list keeps keyed hashes only, answers look-ups in any phone format and tells
every service over the bus."""

from __future__ import annotations

from shared.bus import build_bus
from shared.db import create_engine
from shared.events import Envelope, Topics
from shared.privacy import CONTACT_SUPPRESSED
from shared.settings import ServiceSettings
from tests.support.harness import eventually, run_system


async def test_objection_is_stored_hashed_and_announced(
    embedded_settings: dict[str, ServiceSettings],
) -> None:
    settings = embedded_settings["crm"]
    async with run_system({"crm": settings}) as system:
        created = await system.crm.post(
            "/v1/privacy/objections",
            json={"phone": "06 12 34 56 78", "email": "Paul@Example.fr", "reason": "objection"},
        )
        assert created.status_code == 201, created.text
        for query in ({"phone": "+33612345678"}, {"email": "paul@example.fr"}):
            found = (await system.crm.get("/v1/privacy/objections", params=query)).json()
            assert found["suppressed"] is True
            assert found["reason"] == "objection"
        other = await system.crm.get("/v1/privacy/objections", params={"phone": "0699999999"})
        assert other.json() == {"suppressed": False, "reason": None, "since": None}

        invalid = await system.crm.post("/v1/privacy/objections", json={"phone": "12"})
        assert invalid.status_code == 422
        assert invalid.json()["errors"][0]["field"] == "phone"
        assert (await system.crm.post("/v1/privacy/objections", json={})).status_code == 422
        assert (await system.crm.get("/v1/privacy/objections")).status_code == 422

        engine = create_engine(settings.resolved_database_url())
        async with engine.connect() as connection:
            rows = (await connection.exec_driver_sql("SELECT * FROM contact_objection")).all()
        await engine.dispose()
        assert len(rows) == 2
        stored = repr(rows)
        assert "612345678" not in stored
        assert "paul" not in stored.lower()

        bus = build_bus(settings)
        await bus.start()
        consumer = bus.consumer(group_id="objection-check", topics=[Topics.PRIVACY])
        await consumer.start()
        try:
            records = await eventually(lambda: consumer.poll(timeout_s=0.2, max_records=10))
        finally:
            await consumer.stop()
            await bus.stop()
        event = Envelope.from_message(records[0].value, records[0].headers)
        assert event.type == CONTACT_SUPPRESSED
        assert len(event.data["contact_hashes"]) == 2
