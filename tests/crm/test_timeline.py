"""crm builds one timeline per client from every step of its leads, in order, without copying
notes or contact details, and restarts the retention clock only on the prospect's own contact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.events import Envelope
from shared.settings import ServiceSettings
from tests.support.harness import System, eventually, publish_events, run_system

LEAD: dict[str, Any] = {
    "source": "lacentrale",
    "source_ref": "lc-timeline-1",
    "contact": {"full_name": "Inès Bernard", "phone": "06 98 76 54 32"},
    "vehicle": {"ad_ref": "AD-77"},
}


async def _client(system: System) -> dict[str, Any] | None:
    response = await system.crm.get("/v1/clients", params={"phone": "0698765432"})
    items = response.json()["items"]
    return items[0] if items else None


async def _publish_steps(
    settings: ServiceSettings,
    lead_id: str,
    steps: list[tuple[str, dict[str, Any]]],
    start: datetime,
) -> None:
    """The lead's later steps on the bus, one second apart from ``start``."""
    await publish_events(
        settings,
        [
            Envelope(
                source="/test",
                type=event_type,
                subject=lead_id,
                data=data,
                time=start + timedelta(seconds=offset),
            )
            for offset, (event_type, data) in enumerate(steps, start=1)
        ],
    )


async def test_later_steps_join_the_client_timeline(
    embedded_settings: dict[str, ServiceSettings],
) -> None:
    settings = {name: embedded_settings[name] for name in ("ingest", "crm")}
    async with run_system(settings) as system:
        lead_id = (await system.ingest.post("/v1/leads", json=LEAD)).json()["id"]
        client = await eventually(lambda: _client(system))
        received_contact = client["last_contact_at"]

        later = datetime.now(UTC) + timedelta(minutes=5)
        steps = [
            (
                "lead.contact-attempted.v1",
                {
                    "lead_id": lead_id,
                    "attempt_id": "a1",
                    "operator_id": "op-1",
                    "channel": "phone",
                    "outcome": "no_answer",
                    "attempted_at": later.isoformat(),
                },
            ),
            (
                "lead.appointment-set.v1",
                {
                    "lead_id": lead_id,
                    "assignment_id": "as-1",
                    "seller_id": "s-1",
                    "appointment_at": later.isoformat(),
                    "set_at": later.isoformat(),
                },
            ),
        ]
        await _publish_steps(embedded_settings["crm"], lead_id, steps, later)

        async def three_entries() -> dict[str, Any] | None:
            found = await _client(system)
            return found if found and len(found["timeline"]) == 3 else None

        client = await eventually(three_entries)
        kinds = [entry["kind"] for entry in client["timeline"]]
        assert kinds == ["lead.received", "lead.contact-attempted", "lead.appointment-set"]
        attempt = client["timeline"][1]
        assert attempt["details"]["outcome"] == "no_answer"
        # Only ids, times and outcomes are copied (the allow-list of crm/clients/timeline.py).
        assert attempt["details"] == {
            "attempt_id": "a1",
            "operator_id": "op-1",
            "channel": "phone",
            "outcome": "no_answer",
        }
        # The appointment is the prospect's own contact: the retention clock restarts.
        assert client["last_contact_at"] > received_contact


async def test_messages_to_and_from_the_prospect_join_the_timeline_without_their_text(
    embedded_settings: dict[str, ServiceSettings],
) -> None:
    settings = {name: embedded_settings[name] for name in ("ingest", "crm")}
    async with run_system(settings) as system:
        lead = {**LEAD, "source_ref": "lc-timeline-messages"}
        lead_id = (await system.ingest.post("/v1/leads", json=lead)).json()["id"]
        client = await eventually(lambda: _client(system))
        received_contact = client["last_contact_at"]

        later = datetime.now(UTC) + timedelta(minutes=5)
        steps = [
            (
                "lead.message-sent.v1",
                {
                    "lead_id": lead_id,
                    "message_id": "m1",
                    "channel": "email",
                    "kind": "operator_reply",
                    "operator_id": "op-1",
                    "created_at": later.isoformat(),
                    "sent_at": later.isoformat(),
                },
            ),
            (
                "lead.message-bounced.v1",
                {
                    "lead_id": lead_id,
                    "message_id": "m1",
                    "bounce": "soft",
                    "status": "4.2.2",
                    "bounced_at": later.isoformat(),
                },
            ),
            (
                "lead.message-received.v1",
                {
                    "lead_id": lead_id,
                    "message_id": "in-1",
                    "channel": "email",
                    "received_at": later.isoformat(),
                    "sender": "ines.bernard@example.org",
                    "subject": "Re: votre demande",
                    "text": "Oui, rappelez-moi demain au 06 98 76 54 32",
                },
            ),
            (
                "lead.opted-out.v1",
                {
                    "lead_id": lead_id,
                    "channel": "sms",
                    "via": "stop_reply",
                    "opted_out_at": later.isoformat(),
                },
            ),
        ]
        await _publish_steps(embedded_settings["crm"], lead_id, steps, later)

        async def five_entries() -> dict[str, Any] | None:
            found = await _client(system)
            return found if found and len(found["timeline"]) == 5 else None

        client = await eventually(five_entries)
        by_kind = {entry["kind"]: entry["details"] for entry in client["timeline"]}
        assert list(by_kind) == [
            "lead.received",
            "lead.message-sent",
            "lead.message-bounced",
            "lead.message-received",
            "lead.opted-out",
        ]
        assert by_kind["lead.message-sent"] == {
            "message_id": "m1",
            "channel": "email",
            "kind": "operator_reply",
            "operator_id": "op-1",
        }
        assert by_kind["lead.message-bounced"] == {"message_id": "m1", "bounce": "soft"}
        # The reply's sender, subject and text stay out of crm's timeline.
        assert by_kind["lead.message-received"] == {"message_id": "in-1", "channel": "email"}
        assert by_kind["lead.opted-out"] == {"channel": "sms", "via": "stop_reply"}
        # The prospect's reply is their own contact: the retention clock restarts.
        assert client["last_contact_at"] > received_contact
