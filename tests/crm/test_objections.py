"""The do-not-contact list keeps keyed hashes only, answers look-ups in any phone format and tells
every service over the bus."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.bus import build_bus
from shared.db import create_engine
from shared.events import Envelope, Topics
from shared.privacy import CONTACT_SUPPRESSED
from shared.settings import ServiceSettings
from tests.support.harness import eventually, publish_events, run_system


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
        assert invalid.json()["errors"][0]["location"] == "body"
        asked = await system.crm.get("/v1/privacy/objections", params={"phone": "12"})
        assert asked.status_code == 422
        assert (asked.json()["errors"][0]["field"], asked.json()["errors"][0]["location"]) == (
            "phone",
            "query",
        )
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

        [event] = await _announced(settings)
        assert len(event.data["contact_hashes"]) == 2


async def _announced(settings: ServiceSettings) -> list[Envelope]:
    """The ``privacy.contact-suppressed.v1`` events on the bus (waits for the first)."""
    bus = build_bus(settings)
    await bus.start()
    consumer = bus.consumer(group_id="objection-check", topics=[Topics.PRIVACY])
    await consumer.start()
    try:
        records = await eventually(lambda: consumer.poll(timeout_s=0.2, max_records=10))
    finally:
        await consumer.stop()
        await bus.stop()
    events = [Envelope.from_message(record.value, record.headers) for record in records]
    return [event for event in events if event.type == CONTACT_SUPPRESSED]


async def test_an_sms_stop_puts_the_lead_phone_on_the_do_not_contact_list(
    embedded_settings: dict[str, ServiceSettings],
) -> None:
    settings = {name: embedded_settings[name] for name in ("ingest", "crm")}
    lead = {
        "source": "leboncoin",
        "source_ref": "lbc-stop-1",
        "contact": {
            "full_name": "Léa Martin",
            "phone": "06 11 22 33 44",
            "email": "lea@example.org",
        },
        "vehicle": {"ad_ref": "AD-5"},
    }
    async with run_system(settings) as system:
        lead_id = (await system.ingest.post("/v1/leads", json=lead)).json()["id"]

        async def client() -> dict[str, Any] | None:
            found = await system.crm.get("/v1/clients", params={"phone": "0611223344"})
            items = found.json()["items"]
            return items[0] if items else None

        await eventually(client)
        stopped_at = datetime.now(UTC)
        await publish_events(
            embedded_settings["crm"],
            [
                Envelope(
                    source="/test",
                    type="lead.opted-out.v1",
                    subject=lead_id,
                    data={
                        "lead_id": lead_id,
                        "channel": "sms",
                        "via": "stop_reply",
                        "opted_out_at": stopped_at.isoformat(),
                    },
                )
            ],
        )

        async def suppressed() -> dict[str, Any] | None:
            found = (
                await system.crm.get("/v1/privacy/objections", params={"phone": "+33611223344"})
            ).json()
            return found if found["suppressed"] else None

        objection = await eventually(suppressed)
        assert objection["reason"] == "opt_out"
        # An SMS STOP is about the phone: the e-mail stays reachable.
        by_email = await system.crm.get(
            "/v1/privacy/objections", params={"email": "lea@example.org"}
        )
        assert by_email.json()["suppressed"] is False
        # Announced to every service, keyed by hash only.
        published = await _announced(embedded_settings["crm"])
        assert len(published) == 1
        assert "+33611223344" not in str(published[0].data)
