"""An objection recorded in crm reaches qualify: the person's own enquiry is still answered and
qualified, but no marketing consent can be recorded for them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, table

from shared.db import create_engine
from shared.settings import ServiceSettings
from tests.support.harness import System, eventually, run_system

PHONE = "06 21 43 65 87"
CONSENT = {
    "granted": True,
    "at": "2026-11-24T10:05:00+01:00",
    "wording": "J'accepte de recevoir des offres par SMS.",
    "collected_via": "phone_call",
}
QUALIFICATION: dict[str, Any] = {"intent": "buy", "channel": "full_web", "language": "fr"}


async def _queued(system: System, lead_id: str) -> bool:
    items = (await system.qualify.get("/v1/queue")).json()["items"]
    return lead_id in {item["lead_id"] for item in items}


async def _objections_known(settings: ServiceSettings) -> bool:
    """Whether qualify's consumer has applied crm's do-not-contact event (it comes from crm, the
    lead from ingest: the two may arrive in either order)."""
    engine = create_engine(settings.resolved_database_url())
    try:
        async with engine.connect() as connection:
            count = select(func.count()).select_from(table("suppressed_contact"))
            return bool((await connection.execute(count)).scalar_one())
    finally:
        await engine.dispose()


async def test_objection_blocks_marketing_consents_in_qualify(
    embedded_settings: dict[str, ServiceSettings],
) -> None:
    settings = {name: embedded_settings[name] for name in ("ingest", "qualify", "crm")}
    async with run_system(settings) as system:
        objection = await system.crm.post(
            "/v1/privacy/objections", json={"phone": PHONE, "reason": "objection"}
        )
        assert objection.status_code == 201
        await eventually(lambda: _objections_known(settings["qualify"]))
        lead = {
            "source": "api",
            "source_ref": "dnc-1",
            "contact": {"full_name": "N O", "phone": PHONE},
        }
        lead_id = (await system.ingest.post("/v1/leads", json=lead)).json()["id"]
        await eventually(lambda: _queued(system, lead_id))
        assert (await system.qualify.post(f"/v1/leads/{lead_id}/claim")).status_code == 200
        url = f"/v1/leads/{lead_id}/qualification"

        refused = await system.qualify.post(
            url, json={**QUALIFICATION, "consents": {"sms": CONSENT}}
        )
        assert refused.status_code == 409, refused.text
        assert refused.json()["type"] == "/problems/contact-suppressed"
        answered = await system.qualify.post(url, json=QUALIFICATION)
        assert answered.status_code == 201, answered.text  # their own enquiry is still served
