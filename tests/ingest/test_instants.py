"""Instants from outside are bounded (issue 11, item 2): a ``received_at`` at the datetime limits
is a 422 naming the field on the JSON route (it overflowed the UTC column: a 500); a date the
adapters read (ADF ``requestdate``, an e-mail's ``Date``, a Graph API ``created_time``, a
Messenger timestamp) outside the bounds is unknown, and the lead is received now."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from ingest.canonical import LeadDraft
from ingest.sources.facebook.fetcher import parse_graph_body
from ingest.sources.facebook.notifications import read_notification
from tests.ingest.conftest import IngestFactory
from tests.support.clock import TUESDAY_11H, Clock

EXTREMES = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "1999-12-31T23:59:59Z"]


@pytest.mark.parametrize("instant", [*EXTREMES, "2100-01-01T00:00:01Z", "2026-01-05T10:00:00"])
async def test_received_at_out_of_bounds_or_naive_is_a_422_naming_it(
    ingest_service: IngestFactory, instant: str
) -> None:
    async with ingest_service() as service:
        answer = await service.client.post(
            "/v1/leads",
            json={
                "source": "api",
                "source_ref": "when-1",
                "received_at": instant,
                "contact": {"phone": "0612345678"},
            },
        )
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert [error["field"] for error in answer.json()["errors"]] == ["received_at"]


async def test_received_at_within_bounds_is_kept_in_utc(ingest_service: IngestFactory) -> None:
    async with ingest_service() as service:
        answer = await service.client.post(
            "/v1/leads",
            json={
                "source": "api",
                "source_ref": "when-2",
                "received_at": "2026-01-05T10:00:00+14:00",
                "contact": {"phone": "0612345678"},
            },
        )
        assert answer.status_code == 202, answer.text
        lead = (await service.client.get(f"/v1/leads/{answer.json()['id']}")).json()
        assert datetime.fromisoformat(lead["received_at"]) == datetime.fromisoformat(
            "2026-01-04T20:00:00+00:00"
        )


@pytest.mark.parametrize(
    ("instant", "date_header"),
    [
        ("9999-12-31T23:59:59-14:00", "Fri, 31 Dec 9999 23:59:59 -1400"),
        ("0001-01-01T00:00:00+14:00", "Fri, 31 Dec 1999 23:59:59 +1400"),
        ("1999-12-31T23:59:59Z", "Sat, 01 Jan 2101 00:00:00 +0000"),
    ],
)
async def test_adf_and_email_dates_out_of_bounds_mean_received_now(
    ingest_service: IngestFactory, instant: str, date_header: str
) -> None:
    adf = (
        f'<adf><prospect><id source="p">{instant}</id><requestdate>{instant}</requestdate>'
        "<customer><contact><phone>06 12 34 56 78</phone></contact></customer></prospect></adf>"
    ).encode()
    email = (
        "From: Jean <jean@exemple.fr>\r\nSubject: Bonjour\r\n"
        f"Date: {date_header}\r\n\r\nAppelez-moi au 06 12 34 56 78\r\n"
    ).encode()
    async with ingest_service(clock=Clock()) as service:
        client = service.client
        answers = [
            await client.post("/v1/leads", content=adf, headers={"Content-Type": "text/xml"}),
            await client.post(
                "/v1/sources/email", content=email, headers={"Content-Type": "message/rfc822"}
            ),
        ]
        for answer in answers:
            assert answer.status_code == 202, answer.text
            assert answer.json()["status"] == "accepted"
            lead = (await client.get(f"/v1/leads/{answer.json()['id']}")).json()
            assert datetime.fromisoformat(lead["received_at"]) == TUESDAY_11H


@pytest.mark.parametrize(
    "created_time",
    ["9999-12-31T23:59:59-1400", "0001-01-01T00:00:00+1400", "1970-01-01T00:00:00+0000"],
)
def test_graph_created_time_out_of_bounds_is_unknown(created_time: str) -> None:
    graph = {
        "id": "1",
        "created_time": created_time,
        "field_data": [{"name": "phone_number", "values": ["0612345678"]}],
    }
    draft = parse_graph_body(json.dumps(graph).encode())
    assert isinstance(draft, LeadDraft)
    assert draft.received_at is None


def test_messenger_timestamp_out_of_bounds_is_unknown() -> None:
    event = {"message": {"mid": "m1", "text": "Bonjour"}, "timestamp": 99_999_999_999_999}
    (draft,) = read_notification({"entry": [{"messaging": [event]}]}).messages
    assert isinstance(draft, LeadDraft)
    assert draft.received_at is None
