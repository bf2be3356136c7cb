"""The managers' figures beside the speed-to-lead: sales (price from ``lead.won.v2``), conversion
and revenue by source, site and seller in the summary; daily series by the Europe/Paris day of
reception, across a DST change."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from crm.sla.observations import Observation, observe
from shared.events import Envelope
from shared.events.payloads import LeadLostV1, LeadWonV1, LeadWonV2
from tests.crm.conftest import CrmFactory, record
from tests.support.clock import Clock

PARIS = ZoneInfo("Europe/Paris")
ALWAYS = "mon-sun 00:00-24:00"  # business time = wall time: expected figures are plain arithmetic


def paris(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=PARIS)


def envelope(event_type: str, payload: Any) -> Observation:
    found = observe(
        Envelope(
            source="/dispatch",
            type=event_type,
            subject=payload.lead_id,
            data=payload.model_dump(mode="json"),
        )
    )
    assert found is not None
    return found


def won(lead: str, seller: str, site: str, at: datetime, price: int | None) -> Observation:
    return envelope(
        "lead.won.v2",
        LeadWonV2(
            lead_id=lead,
            assignment_id=f"a-{lead}",
            seller_id=seller,
            site_id=site,
            sale_price_eur=price,
            won_at=at,
        ),
    )


def lost(lead: str, seller: str, at: datetime) -> Observation:
    return envelope(
        "lead.lost.v1",
        LeadLostV1(
            lead_id=lead,
            assignment_id=f"a-{lead}",
            seller_id=seller,
            reason="bought_elsewhere",
            lost_at=at,
        ),
    )


def received(lead: str, at: datetime, source: str = "api") -> Observation:
    return Observation(lead, {"received": at}, source=source)


async def test_summary_serves_sales_conversion_and_revenue_by_seller_and_site(
    crm: CrmFactory,
) -> None:
    day = paris(11, 24, 10)
    later = day + timedelta(hours=3)
    facts = [
        received("S1", day),
        received("S2", day),
        received("S3", day, source="leboncoin"),
        received("S4", day, source="leboncoin"),
        won("S1", "s-1", "lyon", later, 15_000),
        # The same sale as lead.won.v1 (dispatch publishes both for a while): the price stays.
        envelope(
            "lead.won.v1",
            LeadWonV1(lead_id="S1", assignment_id="a-S1", seller_id="s-1", won_at=later),
        ),
        won("S2", "s-1", "lyon", later, None),  # no price given
        lost("S3", "s-2", later),
        won("S4", "s-2", "paris-15", later, 30_000),
    ]
    async with crm.running() as system:
        await record(system.services["crm"], facts)
        window = {"from": "2026-11-23", "to": "2026-11-28"}
        by_seller = await system.crm.get("/v1/sla/summary", params={**window, "group_by": "seller"})
        assert by_seller.status_code == 200, by_seller.text
        sales = {group["key"]: group["sales"] for group in by_seller.json()["groups"]}
        assert sales["s-1"] == {
            "won": 2,
            "closed": 2,
            "conversion": 1.0,
            "priced": 1,
            "revenue_eur": 15_000,
            "average_sale_eur": 15_000.0,
        }
        assert sales["s-2"]["won"] == 1
        assert sales["s-2"]["closed"] == 2
        assert sales["s-2"]["conversion"] == 0.5
        assert sales["s-2"]["revenue_eur"] == 30_000
        by_site = await system.crm.get("/v1/sla/summary", params={**window, "group_by": "site"})
        revenue = {
            group["key"]: group["sales"]["revenue_eur"] for group in by_site.json()["groups"]
        }
        assert revenue == {"lyon": 15_000, "paris-15": 30_000, None: 0}
        by_source = await system.crm.get("/v1/sla/summary", params={**window, "group_by": "source"})
        conversion = {
            group["key"]: group["sales"]["conversion"] for group in by_source.json()["groups"]
        }
        assert conversion == {"api": 1.0, "leboncoin": 0.5}
        overall = await system.crm.get("/v1/sla/summary", params=window)
        [group] = overall.json()["groups"]
        assert group["sales"]["revenue_eur"] == 45_000
        assert group["sales"]["average_sale_eur"] == 22_500.0


async def test_daily_series_count_by_the_paris_day_of_reception_across_dst(
    crm: CrmFactory,
) -> None:
    # 25 October 2026: clocks go back at 03:00. A's 00:30 is 22:30 UTC the day before, B's
    # 00:30 the next night is 23:30 UTC the day before: both counted on their Paris day.
    a, b, c = paris(10, 25, 0, 30), paris(10, 26, 0, 30), paris(10, 26, 10, 0)
    facts = [
        received("A", a),
        Observation("A", {"first_attempt": a + timedelta(minutes=5)}, operator_id="op-1"),
        won("A", "s-1", "lyon", a + timedelta(hours=5), 20_000),
        received("B", b),
        Observation("B", {"first_attempt": b + timedelta(minutes=20)}, operator_id="op-1"),
        received("C", c, source="leboncoin"),
        lost("C", "s-2", c + timedelta(hours=1)),
    ]
    async with crm.running(clock=Clock(paris(10, 27, 12)), call_centre_hours=ALWAYS) as system:
        await record(system.services["crm"], facts)
        window = {"from": "2026-10-24", "to": "2026-10-27"}
        response = await system.crm.get("/v1/sla/series", params=window)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["timezone"], body["stage"], body["by"]) == (
            "Europe/Paris",
            "first_attempt",
            None,
        )
        [series] = body["series"]
        points = {point["day"]: point for point in series["points"]}
        assert list(points) == ["2026-10-24", "2026-10-25", "2026-10-26"]
        assert points["2026-10-24"]["leads"] == 0
        assert points["2026-10-24"]["conversion"] is None
        day_a = points["2026-10-25"]
        assert (day_a["leads"], day_a["first_contact_p50_minutes"]) == (1, 5)
        assert (day_a["won"], day_a["closed"], day_a["conversion"]) == (1, 1, 1.0)
        assert (day_a["revenue_eur"], day_a["breaches"]) == (20_000, 0)
        day_b = points["2026-10-26"]
        assert day_b["leads"] == 2
        assert day_b["first_contact_count"] == 1
        assert (day_b["first_contact_p50_minutes"], day_b["first_contact_p90_minutes"]) == (20, 20)
        assert day_b["breaches"] == 1  # B's first call 20 minutes after, over the 15 of target
        assert (day_b["won"], day_b["closed"], day_b["conversion"]) == (0, 1, 0.0)

        by_source = await system.crm.get("/v1/sla/series", params={**window, "by": "source"})
        keyed = {item["key"]: item["points"] for item in by_source.json()["series"]}
        assert set(keyed) == {"api", "leboncoin"}
        assert [point["leads"] for point in keyed["api"]] == [0, 1, 1]
        assert [point["leads"] for point in keyed["leboncoin"]] == [0, 0, 1]

        seller_stage = await system.crm.get(
            "/v1/sla/series", params={**window, "by": "seller", "stage": "seller_contact"}
        )
        assert seller_stage.status_code == 200
        for bad in ({"by": "colour"}, {"stage": "coffee"}, {"to": "2026-10-20"}):
            refused = await system.crm.get("/v1/sla/series", params={**window, **bad})
            assert refused.status_code == 422
            assert refused.headers["content-type"].startswith("application/problem+json")
