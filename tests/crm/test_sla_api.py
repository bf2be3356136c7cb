"""The managers' SLA API on the crm service: summary, funnel, breaches (JSON and CSV), roles, bad
input as 422 problems. Runs on SQLite and on PostgreSQL (marked)."""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from crm.sla.observations import Observation, observe
from crm.sla.percentiles import PERCENTILES, brute_force
from crm.sla.repository import SlaRepository
from shared.db import session_scope
from shared.events import Envelope
from shared.events.payloads import (
    AssignmentAcceptedV1,
    AssignmentOfferedV1,
    ContactV1,
    LeadAppointmentSetV1,
    LeadAssignedV1,
    LeadContactedV1,
    LeadReceivedV1,
    LeadWonV1,
    VehicleV1,
)
from tests.crm.conftest import (
    CrmFactory,
    publish_calendar,
    record,
    runtime_of,
    store_role_token,
)
from tests.support.clock import Clock

PARIS = ZoneInfo("Europe/Paris")
PROBLEM = "application/problem+json"
RANGE = {"from": "2026-11-23", "to": "2026-11-28"}


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS).astimezone(UTC)


def week() -> list[Observation]:
    """Tuesday 24 November 2026, default calendars (call centre closed 12:30-13:30)."""
    return [
        Observation("L1", {"received": paris(2026, 11, 24, 10, 0)}, source="leboncoin"),
        Observation("L1", {"first_attempt": paris(2026, 11, 24, 10, 5)}, operator_id="op-a"),
        Observation(
            "L1",
            {"reached": paris(2026, 11, 24, 10, 5), "qualified": paris(2026, 11, 24, 10, 30)},
            site="paris-15",
            operator_id="op-a",
        ),
        Observation("L1", {"offered": paris(2026, 11, 24, 10, 40)}, seller_id="s-1"),
        Observation("L1", {"accepted": paris(2026, 11, 24, 10, 45)}, seller_id="s-1"),
        Observation("L1", {"seller_contact": paris(2026, 11, 24, 11, 0)}),
        Observation("L2", {"received": paris(2026, 11, 24, 12, 20)}, source="leboncoin"),
        Observation("L2", {"first_attempt": paris(2026, 11, 24, 13, 40)}, operator_id="op-b"),
        Observation("L3", {"received": paris(2026, 11, 24, 11, 0)}, source="lacentrale"),
        Observation("L4", {"received": paris(2026, 11, 24, 11, 0)}, source="facebook"),
        Observation("L4", {"disqualified": paris(2026, 11, 24, 11, 1)}),
        Observation("L5", {"received": paris(2026, 12, 2, 10, 0)}, source="leboncoin"),
        # A replay changes nothing (earliest instant wins).
        Observation("L1", {"first_attempt": paris(2026, 11, 24, 10, 7)}, operator_id="op-z"),
    ]


def stage(group: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(item for item in group["stages"] if item["stage"] == name)
    return found


async def test_summary_counts_percentiles_breaches(crm: CrmFactory) -> None:
    async with crm.running() as system:
        await record(system.services["crm"], week())
        response = await system.crm.get("/v1/sla/summary", params=RANGE)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["period"]["start"].startswith("2026-11-22T23:00:00")  # local midnight
        [overall] = body["groups"]
        assert overall["key"] == "all"
        assert overall["leads"] == 4
        first = stage(overall, "first_attempt")
        assert (first["count"], first["p50_minutes"], first["p90_minutes"]) == (2, 5, 20)
        # Wall-clock beside business time: L2 waited 80 real minutes over the lunch break.
        assert (first["wall_p50_minutes"], first["wall_p90_minutes"]) == (5, 80)
        assert (first["late"], first["overdue"], first["breached"]) == (1, 1, 2)
        assert first["breach_rate"] == pytest.approx(2 / 3, abs=1e-4)
        assert first["target_minutes"] == 15
        contact = stage(overall, "seller_contact")
        assert (contact["count"], contact["p50_minutes"], contact["breached"]) == (1, 15, 0)
        assert stage(overall, "reached")["breach_rate"] is None  # no target

        by_source = await system.crm.get("/v1/sla/summary", params={**RANGE, "group_by": "source"})
        groups = {group["key"]: group for group in by_source.json()["groups"]}
        assert set(groups) == {"facebook", "lacentrale", "leboncoin"}
        assert stage(groups["leboncoin"], "first_attempt")["late"] == 1
        assert stage(groups["lacentrale"], "first_attempt")["overdue"] == 1
        assert stage(groups["facebook"], "first_attempt")["overdue"] == 0  # closed lead

        only_a = await system.crm.get("/v1/sla/summary", params={**RANGE, "operator": "op-a"})
        [group] = only_a.json()["groups"]
        assert group["leads"] == 1
        assert stage(group, "first_attempt")["p95_minutes"] == 5

        empty = await system.crm.get("/v1/sla/summary", params={**RANGE, "site": "nowhere"})
        assert empty.json()["groups"] == []


async def test_funnel_by_source_and_site(crm: CrmFactory) -> None:
    async with crm.running() as system:
        await record(system.services["crm"], week())
        response = await system.crm.get("/v1/sla/funnel", params=RANGE)
        assert response.status_code == 200, response.text
        rows = {
            (row["keys"]["source"], row["keys"]["site"]): row for row in response.json()["rows"]
        }
        assert rows[("leboncoin", "paris-15")]["counts"]["seller_contact"] == 1
        assert rows[("leboncoin", "paris-15")]["conversion"]["qualified"] == 1.0
        assert rows[("leboncoin", None)]["counts"]["received"] == 1
        assert rows[("facebook", None)]["counts"]["disqualified"] == 1
        by_seller = await system.crm.get("/v1/sla/funnel", params={**RANGE, "group_by": "seller"})
        assert {row["keys"]["seller"] for row in by_seller.json()["rows"]} == {None, "s-1"}


async def test_breaches_json_pages_and_csv(crm: CrmFactory) -> None:
    async with crm.running() as system:
        await record(system.services["crm"], week())
        response = await system.crm.get("/v1/sla/breaches", params=RANGE)
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert [(item["lead_id"], item["stage"], item["state"]) for item in items] == [
            ("L3", "first_attempt", "overdue"),
            ("L2", "first_attempt", "late"),
        ]
        assert items[1]["lateness_minutes"] == 5.0
        assert items[1]["business_minutes"] == 20.0
        assert items[1]["wall_minutes"] == 80.0
        assert items[0]["lateness_minutes"] > 0

        first = await system.crm.get("/v1/sla/breaches", params={**RANGE, "limit": 1})
        cursor = first.json()["next_cursor"]
        assert [item["lead_id"] for item in first.json()["items"]] == ["L3"]
        assert cursor
        second = await system.crm.get(
            "/v1/sla/breaches", params={**RANGE, "limit": 1, "cursor": cursor}
        )
        assert [item["lead_id"] for item in second.json()["items"]] == ["L2"]
        assert second.json()["next_cursor"] is None

        for request in (
            system.crm.get("/v1/sla/breaches", params=RANGE, headers={"Accept": "text/csv"}),
            system.crm.get("/v1/sla/breaches", params={**RANGE, "format": "csv"}),
        ):
            exported = await request
            assert exported.status_code == 200
            assert exported.headers["content-type"].startswith("text/csv")
            rows = list(csv.DictReader(io.StringIO(exported.text)))
            assert [(row["lead_id"], row["state"]) for row in rows] == [
                ("L3", "overdue"),
                ("L2", "late"),
            ]
            assert rows[1]["target_minutes"] == "15.0"


async def test_at_risk_counts_running_stages_near_their_deadline(crm: CrmFactory) -> None:
    always = "mon-sun 00:00-24:00"
    clock = Clock()
    async with crm.running(clock=clock, call_centre_hours=always) as system:
        now = clock.now
        await record(
            system.services["crm"],
            [
                Observation("R1", {"received": now - timedelta(minutes=13)}, source="api"),
                Observation("R2", {"received": now - timedelta(minutes=5)}, source="api"),
                Observation("R3", {"received": now - timedelta(minutes=20)}, source="api"),
            ],
        )
        window = {
            "from": (now - timedelta(hours=1)).isoformat(),
            "to": (now + timedelta(minutes=1)).isoformat(),
        }
        body = (await system.crm.get("/v1/sla/summary", params=window)).json()
        assert datetime.fromisoformat(body["generated_at"]) == now  # the app's clock
        first = stage(body["groups"][0], "first_attempt")
        assert (first["at_risk"], first["overdue"], first["count"]) == (1, 1, 0)
        # Three minutes later the lead at risk is overdue too.
        clock.advance(minutes=3)
        body = (await system.crm.get("/v1/sla/summary", params=window)).json()
        first = stage(body["groups"][0], "first_attempt")
        assert (first["at_risk"], first["overdue"], first["count"]) == (0, 2, 0)


async def test_percentiles_equal_a_brute_force_reference(crm: CrmFactory) -> None:
    always = "mon-sun 00:00-24:00"  # business time = wall time: the reference is plain arithmetic
    generator = random.Random(7)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    observations: list[Observation] = []
    expected: dict[str, list[int]] = defaultdict(list)
    for index in range(300):
        received = start + timedelta(seconds=generator.randint(0, 20 * 86400))
        waited = int(generator.lognormvariate(6.5, 1.2))
        operator = generator.choice(["op-1", "op-2", "op-3"])
        lead = f"R{index}"
        observations += [
            Observation(lead, {"received": received}, source="api"),
            Observation(
                lead, {"first_attempt": received + timedelta(seconds=waited)}, operator_id=operator
            ),
        ]
        expected[operator].append(-(-waited // 60))
    async with crm.running(call_centre_hours=always) as system:
        await record(system.services["crm"], observations)
        params = {"from": "2026-09-30", "to": "2026-10-31", "group_by": "operator"}
        body = (await system.crm.get("/v1/sla/summary", params=params)).json()
    assert sorted(group["key"] for group in body["groups"]) == sorted(expected)
    for group in body["groups"]:
        first = stage(group, "first_attempt")
        values = expected[group["key"]]
        wanted = brute_force(values, PERCENTILES)
        assert group["leads"] == len(values)
        assert [first["p50_minutes"], first["p90_minutes"], first["p95_minutes"]] == wanted
        # Business time is wall time on this calendar: the wall percentiles are the same.
        wall = [first["wall_p50_minutes"], first["wall_p90_minutes"], first["wall_p95_minutes"]]
        assert wall == wanted
        assert first["count"] == len(values)
        assert first["late"] == sum(1 for minutes in values if minutes > 15)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "from"),
        ({"from": "2026-11-01"}, "to"),
        ({"to": "2026-11-01"}, "from"),
        ({"from": "2026-11-10", "to": "2026-11-01"}, "to"),
        ({"from": "2026-11-10", "to": "2026-11-10"}, "to"),
        ({"from": "2020-01-01", "to": "2026-11-01"}, "to"),
        ({"from": "9999-12-31T23:59:59-14:00", "to": "9999-12-31T23:59:59+14:00"}, "from"),
        ({"from": "yesterday", "to": "2026-11-01"}, "from"),
        ({**RANGE, "group_by": "colour"}, "group_by"),
        ({**RANGE, "source": ""}, "source"),
    ],
)
async def test_bad_ranges_and_group_by_are_422_problems(
    crm: CrmFactory, params: dict[str, str], field: str
) -> None:
    async with crm.running() as system:
        response = await system.crm.get("/v1/sla/summary", params=params)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM
        assert field in {error["field"] for error in response.json()["errors"]}
        paths = ["/v1/sla/funnel"] + ([] if "group_by" in params else ["/v1/sla/breaches"])
        for path in paths:
            other = await system.crm.get(path, params=params)
            assert other.status_code == 422, (path, other.text)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/sla/funnel", {**RANGE, "group_by": "source,colour"}),
        ("/v1/sla/funnel", {**RANGE, "group_by": "site,site"}),
        ("/v1/sla/breaches", {**RANGE, "stage": "coffee"}),
        ("/v1/sla/breaches", {**RANGE, "stage": "reached"}),  # no target: no breach
        ("/v1/sla/breaches", {**RANGE, "cursor": "not-a-cursor"}),
        ("/v1/sla/breaches", {**RANGE, "limit": "5000"}),
        ("/v1/sla/breaches", {**RANGE, "limit": "0"}),
        ("/v1/sla/breaches", {**RANGE, "format": "xml"}),
    ],
)
async def test_other_bad_parameters_are_422_problems(
    crm: CrmFactory, path: str, params: dict[str, str]
) -> None:
    async with crm.running() as system:
        response = await system.crm.get(path, params=params)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM


async def test_manager_role_is_required(crm: CrmFactory) -> None:
    async with crm.running() as system:
        for role, status in (("manager", 200), ("operator", 403), ("seller", 403)):
            token = await store_role_token(system.services["crm"], role)
            async with system.client_as("crm", token) as client:
                for path in ("/v1/sla/summary", "/v1/sla/funnel", "/v1/sla/breaches"):
                    response = await client.get(path, params=RANGE)
                    assert response.status_code == status, (role, path, response.text)
        async with system.client_as("crm", None) as bare:
            response = await bare.get("/v1/sla/summary", params=RANGE)
            assert response.status_code == 401
            assert response.headers["content-type"] == PROBLEM


def _envelope(event_type: str, payload: Any) -> Envelope:
    return Envelope(
        source="/tests",
        type=event_type,
        subject=payload.lead_id,
        data=payload.model_dump(mode="json"),
    )


async def test_dispatch_events_fill_the_seller_stages(crm: CrmFactory) -> None:
    at = paris(2026, 11, 24, 10, 0)
    minutes = timedelta(minutes=1)
    events = [
        _envelope(
            "lead.received.v1",
            LeadReceivedV1(
                lead_id="D1",
                kind="enquiry",
                source="lacentrale",
                source_ref="x",
                received_at=at,
                contact=ContactV1(full_name="Jean Dupont"),
                vehicle=VehicleV1(),
            ),
        ),
        _envelope(
            "assignment.offered.v1",
            AssignmentOfferedV1(
                lead_id="D1",
                assignment_id="a1",
                seller_id="s-1",
                site_id="lyon",
                offered_at=at + 20 * minutes,
                accept_due_at=at + 30 * minutes,
                strategy="least_loaded",
            ),
        ),
        _envelope(
            "assignment.offered.v1",
            AssignmentOfferedV1(
                lead_id="D1",
                assignment_id="a2",
                seller_id="s-2",
                site_id="lyon",
                offered_at=at + 32 * minutes,
                accept_due_at=at + 42 * minutes,
                strategy="least_loaded",
            ),
        ),
        _envelope(
            "assignment.accepted.v1",
            AssignmentAcceptedV1(
                lead_id="D1",
                assignment_id="a2",
                seller_id="s-2",
                accepted_at=at + 35 * minutes,
                first_contact_due_at=at + 95 * minutes,
            ),
        ),
        _envelope(
            "lead.assigned.v1",
            LeadAssignedV1(
                lead_id="D1",
                assignment_id="a2",
                seller_id="s-2",
                site_id="lyon",
                assigned_at=at + 35 * minutes,
            ),
        ),
        _envelope(
            "lead.contacted.v1",
            LeadContactedV1(
                lead_id="D1",
                assignment_id="a2",
                seller_id="s-2",
                channel="phone",
                contacted_at=at + 50 * minutes,
            ),
        ),
        _envelope(
            "lead.appointment-set.v1",
            LeadAppointmentSetV1(
                lead_id="D1",
                assignment_id="a2",
                seller_id="s-2",
                appointment_at=at + timedelta(days=3),
                site_id="lyon",
                set_at=at + 51 * minutes,
            ),
        ),
        _envelope(
            "lead.won.v1",
            LeadWonV1(
                lead_id="D1",
                assignment_id="a2",
                seller_id="s-2",
                won_at=at + timedelta(hours=5),
            ),
        ),
    ]
    observations = [observe(event) for event in events]
    async with crm.running() as system:
        await publish_calendar(system.services["crm"], "lyon", "mon-fri 08:00-20:00")
        await record(system.services["crm"], [item for item in observations if item is not None])
        runtime = runtime_of(system.services["crm"])
        async with session_scope(runtime.session_factory) as session:
            fact = await SlaRepository.from_session(session).get("D1")
        assert fact is not None
        assert (fact["seller_id"], fact["site"], fact["outcome"]) == ("s-2", "lyon", "won")
        assert fact["accepted_business_s"] == 15 * 60  # from the first offer to the acceptance
        assert fact["seller_contact_business_s"] == 15 * 60
        assert fact["appointment_business_s"] == 51 * 60  # set_at, not the appointment's date
        assert fact["won_business_s"] == 5 * 3600  # lyon open 08:00-20:00 without a break
        response = await system.crm.get("/v1/sla/breaches", params={**RANGE, "stage": "accepted"})
        [breach] = response.json()["items"]
        assert (breach["lead_id"], breach["lateness_minutes"]) == ("D1", 5.0)
