"""The SLA of both paths and of reopened leads, from qualify's events: a direct lead (qualified
by the routing policy at receipt) has no operator stages and an immediate ``qualified`` stage;
``path`` is a dimension and a filter; a reopened lead is no longer closed as disqualified. On
SQLite and PostgreSQL (marked)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from crm.sla.observations import Observation, observe
from crm.sla.repository import SlaRepository
from shared.db import session_scope
from shared.events import Envelope
from shared.events.payloads import (
    DIRECT_ROUTING_OPERATOR,
    ContactV1,
    LeadContactAttemptedV1,
    LeadDisqualifiedV1,
    LeadQualifiedV1,
    LeadReceivedV1,
    LeadReopenedV1,
    VehicleV1,
)
from tests.crm.conftest import CrmFactory, record, runtime_of
from tests.support.harness import System

PARIS = ZoneInfo("Europe/Paris")
RANGE = {"from": "2026-11-23", "to": "2026-11-28"}
TUESDAY_10H = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS).astimezone(UTC)


def seen(event_type: str, payload: BaseModel) -> Observation:
    """What the SLA consumer makes of ``payload`` published as ``event_type``."""
    data: dict[str, Any] = payload.model_dump(mode="json")
    observation = observe(Envelope(source="/t", type=event_type, subject="x", data=data))
    assert observation is not None
    return observation


def received(lead_id: str, at: datetime = TUESDAY_10H) -> Observation:
    return seen(
        "lead.received.v1",
        LeadReceivedV1(
            lead_id=lead_id,
            kind="enquiry",
            source="leboncoin",
            source_ref=lead_id,
            received_at=at,
            contact=ContactV1(phone="+33612345678"),
            vehicle=VehicleV1(),
        ),
    )


def qualified(lead_id: str, at: datetime, *, path: str, operator_id: str) -> Observation:
    return seen(
        "lead.qualified.v1",
        LeadQualifiedV1.model_validate(
            {
                "lead_id": lead_id,
                "source": "leboncoin",
                "received_at": TUESDAY_10H,
                "qualified_at": at,
                "operator_id": operator_id,
                "path": path,
                "contact": {"phone": "+33612345678"},
                "intent": "buy",
                "channel": "full_web",
            }
        ),
    )


def stage(group: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(item for item in group["stages"] if item["stage"] == name)
    return found


async def summary(system: System, **params: str) -> dict[str | None, dict[str, Any]]:
    response = await system.crm.get("/v1/sla/summary", params={**RANGE, **params})
    assert response.status_code == 200, response.text
    return {group["key"]: group for group in response.json()["groups"]}


async def test_direct_leads_skip_the_operator_stages(crm: CrmFactory) -> None:
    async with crm.running() as system:
        await record(
            system.services["crm"],
            [
                received("direct"),
                qualified(
                    "direct",
                    TUESDAY_10H + timedelta(seconds=1),
                    path="direct",
                    operator_id=DIRECT_ROUTING_OPERATOR,
                ),
                received("operated"),
                qualified(
                    "operated",
                    TUESDAY_10H + timedelta(minutes=20),
                    path="qualify",
                    operator_id="op",
                ),
                received("waiting"),
            ],
        )
        groups = await summary(system, group_by="path")
        assert set(groups) == {"direct", "qualify", None}
        direct = groups["direct"]
        assert direct["leads"] == 1
        # Qualified at receipt: within the first whole minute; never an attempt to wait for.
        assert (stage(direct, "qualified")["count"], stage(direct, "qualified")["p50_minutes"]) == (
            1,
            1,
        )
        assert stage(direct, "first_attempt")["overdue"] == 0
        assert stage(direct, "first_attempt")["breach_rate"] is None
        # The operators' leads still owe a first attempt (the waiting one has no path yet).
        assert stage(groups["qualify"], "first_attempt")["overdue"] == 1
        assert stage(groups["qualify"], "qualified")["p50_minutes"] == 20
        assert stage(groups[None], "first_attempt")["overdue"] == 1

        filtered = await summary(system, path="direct")
        assert [group["leads"] for group in filtered.values()] == [1]
        funnel = await system.crm.get("/v1/sla/funnel", params={**RANGE, "group_by": "path"})
        rows = {row["keys"]["path"]: row["counts"] for row in funnel.json()["rows"]}
        assert rows["direct"]["qualified"] == 1
        assert rows["direct"]["first_attempt"] == 0
        breaches = await system.crm.get(
            "/v1/sla/breaches", params={**RANGE, "stage": "first_attempt", "path": "direct"}
        )
        assert breaches.json()["items"] == []
        # The machine is not an operator of the operator dimension.
        by_operator = await summary(system, group_by="operator")
        assert DIRECT_ROUTING_OPERATOR not in by_operator
        bad = await system.crm.get("/v1/sla/summary", params={**RANGE, "path": "sideways"})
        assert bad.status_code == 422


async def test_a_reopened_lead_is_no_longer_disqualified(crm: CrmFactory) -> None:
    closed_at = TUESDAY_10H + timedelta(minutes=5)
    reopened_at = TUESDAY_10H + timedelta(hours=2)
    async with crm.running() as system:
        service = system.services["crm"]
        await record(
            service,
            [
                received("L"),
                seen(
                    "lead.disqualified.v1",
                    LeadDisqualifiedV1(
                        lead_id="L", reason="spam", disqualified_at=closed_at, operator_id="op"
                    ),
                ),
            ],
        )
        closed = await summary(system)
        assert stage(closed["all"], "first_attempt")["overdue"] == 0  # closed: not owed

        await record(
            service,
            [
                seen(
                    "lead.reopened.v1",
                    LeadReopenedV1(
                        lead_id="L",
                        reopened_at=reopened_at,
                        operator_id="op",
                        reason="disqualified_by_mistake",
                        previous_reason="spam",
                        due_at=reopened_at + timedelta(minutes=15),
                    ),
                )
            ],
        )
        async with session_scope(runtime_of(service).session_factory) as session:
            fact = await SlaRepository.from_session(session).get("L")
        assert fact is not None
        assert (fact["disqualified_at"], fact["closed_at"], fact["outcome"]) == (None, None, None)
        assert fact["path"] == "qualify"
        # Open again: its first attempt is owed (and late, counted from its receipt).
        assert stage((await summary(system))["all"], "first_attempt")["overdue"] == 1
        funnel = (await system.crm.get("/v1/sla/funnel", params=RANGE)).json()["rows"]
        assert funnel[0]["counts"]["disqualified"] == 0

        # Worked and closed again: the new disqualification counts from its own time.
        again = reopened_at + timedelta(minutes=30)
        await record(
            service,
            [
                seen(
                    "lead.contact-attempted.v1",
                    LeadContactAttemptedV1(
                        lead_id="L",
                        attempt_id="a",
                        operator_id="op",
                        channel="phone",
                        outcome="reached",
                        attempted_at=again,
                    ),
                ),
                seen(
                    "lead.disqualified.v1",
                    LeadDisqualifiedV1(
                        lead_id="L",
                        reason="not_interested",
                        disqualified_at=again,
                        operator_id="op",
                    ),
                ),
            ],
        )
        async with session_scope(runtime_of(service).session_factory) as session:
            fact = await SlaRepository.from_session(session).get("L")
        assert fact is not None
        assert (fact["disqualified_at"], fact["outcome"]) == (again, "disqualified")
