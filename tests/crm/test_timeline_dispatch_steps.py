"""The real life of an assignment joins crm's timeline: a manager's reassignment, a seller's hand
back, a rescheduled and a missed appointment (ids, times and reasons only), and a sale published
in both versions (lead.won.v1 beside v2) is one entry with its price."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from shared.events import Envelope
from shared.events.payloads import (
    AssignmentHandedBackV1,
    AssignmentReassignedV1,
    ContactV1,
    LeadAppointmentMissedV1,
    LeadAppointmentRescheduledV1,
    LeadReceivedV1,
    LeadWonV1,
    LeadWonV2,
    VehicleV1,
)
from shared.settings import ServiceSettings
from tests.support.harness import System, eventually, publish_events, run_system

PHONE = "+33698765432"


def _envelope(event_type: str, subject: str, payload: BaseModel, at: datetime) -> Envelope:
    return Envelope(
        source="/test",
        type=event_type,
        subject=subject,
        data=payload.model_dump(mode="json"),
        time=at,
    )


async def _client(system: System) -> dict[str, Any] | None:
    items = (await system.crm.get("/v1/clients", params={"phone": PHONE})).json()["items"]
    return items[0] if items else None


async def test_reassignment_hand_back_reschedule_no_show_and_one_sale(
    embedded_settings: dict[str, ServiceSettings],
) -> None:
    lead = str(uuid.uuid4())
    t = datetime.now(UTC)
    appointment = t + timedelta(days=2)
    steps: list[tuple[str, BaseModel]] = [
        (
            "lead.received.v1",
            LeadReceivedV1(
                lead_id=lead,
                kind="enquiry",
                source="api",
                source_ref=lead,
                received_at=t,
                contact=ContactV1(full_name="Inès Bernard", phone=PHONE),
                vehicle=VehicleV1(),
            ),
        ),
        (
            "assignment.reassigned.v1",
            AssignmentReassignedV1(
                lead_id=lead,
                mode="direct",
                reason="absence",
                assignment_id="as-2",
                seller_id="s-2",
                previous_assignment_id="as-1",
                previous_seller_id="s-1",
                reassigned_by="token-manager",
                reassigned_at=t,
            ),
        ),
        (
            "assignment.handed-back.v1",
            AssignmentHandedBackV1(
                lead_id=lead,
                assignment_id="as-2",
                seller_id="s-2",
                reason="wrong_site",
                handed_back_at=t,
            ),
        ),
        (
            "lead.appointment-rescheduled.v1",
            LeadAppointmentRescheduledV1(
                lead_id=lead,
                assignment_id="as-3",
                seller_id="s-3",
                appointment_at=appointment + timedelta(days=1),
                previous_appointment_at=appointment,
                site_id="lyon",
                rescheduled_at=t,
            ),
        ),
        (
            "lead.appointment-missed.v1",
            LeadAppointmentMissedV1(
                lead_id=lead,
                assignment_id="as-3",
                seller_id="s-3",
                appointment_at=appointment + timedelta(days=1),
                site_id="lyon",
                reported_at=t,
            ),
        ),
        (
            "lead.won.v1",
            LeadWonV1(lead_id=lead, assignment_id="as-3", seller_id="s-3", won_at=t),
        ),
        (
            "lead.won.v2",
            LeadWonV2(
                lead_id=lead,
                assignment_id="as-3",
                seller_id="s-3",
                site_id="lyon",
                sale_price_eur=14900,
                won_at=t,
            ),
        ),
    ]
    async with run_system({"crm": embedded_settings["crm"]}) as system:
        await publish_events(
            embedded_settings["crm"],
            [
                _envelope(event_type, lead, payload, t + timedelta(seconds=offset))
                for offset, (event_type, payload) in enumerate(steps)
            ],
        )

        async def complete() -> dict[str, Any] | None:
            found = await _client(system)
            won = [e for e in (found or {}).get("timeline", []) if e["kind"] == "lead.won"]
            return found if won and "sale_price_eur" in won[0]["details"] else None

        client = await eventually(complete)

    timeline = client["timeline"]
    assert [entry["kind"] for entry in timeline] == [
        "lead.received",
        "assignment.reassigned",
        "assignment.handed-back",
        "lead.appointment-rescheduled",
        "lead.appointment-missed",
        "lead.won",
    ]
    details = {entry["kind"]: entry["details"] for entry in timeline}
    assert details["assignment.reassigned"] == {
        "mode": "direct",
        "reason": "absence",
        "assignment_id": "as-2",
        "seller_id": "s-2",
        "previous_assignment_id": "as-1",
        "previous_seller_id": "s-1",
        "reassigned_by": "token-manager",
    }
    assert details["assignment.handed-back"] == {
        "assignment_id": "as-2",
        "seller_id": "s-2",
        "reason": "wrong_site",
    }
    rescheduled = details["lead.appointment-rescheduled"]
    assert set(rescheduled) == {
        "assignment_id",
        "seller_id",
        "appointment_at",
        "previous_appointment_at",
        "site_id",
    }
    assert rescheduled["appointment_at"] > rescheduled["previous_appointment_at"]
    assert set(details["lead.appointment-missed"]) == {
        "assignment_id",
        "seller_id",
        "appointment_at",
        "site_id",
    }
    # v1 then v2 of one sale: one entry, with the price v2 adds.
    assert details["lead.won"] == {
        "assignment_id": "as-3",
        "seller_id": "s-3",
        "site_id": "lyon",
        "vehicle_ad_ref": None,
        "sale_price_eur": 14900,
    }
