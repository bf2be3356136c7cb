"""The ingest HTTP API: e-mails, ADF, canonical JSON, quarantine, ignored, errors."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

import ingest.sources.email.layouts as layouts
from ingest.models import infra
from tests.ingest.conftest import IngestFactory, outbox_count
from tests.ingest.corpus import FIXTURES
from tests.support.clock import TUESDAY_11H, Clock

EMAIL = {"Content-Type": "message/rfc822"}
PROBLEM = "application/problem+json"


def fixture(name: str) -> bytes:
    return (FIXTURES / "email" / name).read_bytes()


async def test_email_becomes_a_lead_and_a_replay_publishes_nothing(
    ingest_service: IngestFactory,
) -> None:
    async with ingest_service() as service:
        client = service.client
        raw = fixture("lacentrale_text_relay.eml")
        answer = await client.post("/v1/sources/email", content=raw, headers=EMAIL)
        assert answer.status_code == 202, answer.text
        body = answer.json()
        assert body["status"] == "accepted"
        lead_id = body["id"]
        assert await outbox_count(service) == 1

        lead = (await client.get(f"/v1/leads/{lead_id}")).json()
        assert lead["source"] == "lacentrale"
        assert lead["kind"] == "enquiry"
        assert lead["source_ref"] == "lc-1@lacentrale.fr"
        assert lead["contact"]["email_is_relay"] is True
        assert lead["contact"]["email_key"] is None
        assert lead["contact"]["phone"] == "+33645678901"
        assert lead["vehicle"]["ad_ref"] == "E112233445"
        assert lead["raw_input_id"] == body["raw_input_id"]
        assert lead["extra"]["trade_in_mentioned"] is True

        # The same bytes again (an IMAP re-read, a provider's retry).
        again = await client.post("/v1/sources/email", content=raw, headers=EMAIL)
        assert again.status_code == 202
        assert again.json()["status"] == "duplicate"
        assert again.json()["id"] == lead_id
        # The same Message-ID with other bytes (a re-send): same lead.
        resent = raw.replace(b"Date: Mon, 05 Jan 2026", b"Date: Tue, 06 Jan 2026")
        third = await client.post("/v1/sources/email", content=resent, headers=EMAIL)
        assert third.json()["status"] == "duplicate"
        assert third.json()["id"] == lead_id
        assert await outbox_count(service) == 1


async def test_relay_address_is_published_as_relay_never_as_identity(
    ingest_service: IngestFactory,
) -> None:
    relay = "4f1c2d3e-5a6b-5c7d-8e9f-0a1b2c3d4e5f@messagerie.lacentrale.fr"
    async with ingest_service() as service:
        raw = fixture("lacentrale_text_relay.eml")
        answer = await service.client.post("/v1/sources/email", content=raw, headers=EMAIL)
        lead = (await service.client.get(f"/v1/leads/{answer.json()['id']}")).json()
        assert lead["relay_email"] == relay
        async with service.app.state.runtime.session_factory() as session:
            value = await session.scalar(select(infra.outbox_event.c.value))
        event = json.loads(value)
        assert event["contact"]["email"] is None  # consumers key identities on it
        assert event["relay_email"] == relay  # where answers reach the buyer
        assert event["contact"]["phone"] == "+33645678901"


async def test_relay_reply_to_beside_a_real_address(ingest_service: IngestFactory) -> None:
    """La Centrale's notification may show the buyer's own address and answer through a relay
    ``Reply-To``: the address stays the identity key, the relay is where answers go."""
    async with ingest_service() as service:
        raw = fixture("lacentrale_text_reply_to_relay.eml")
        answer = await service.client.post("/v1/sources/email", content=raw, headers=EMAIL)
        assert answer.json()["status"] == "accepted"
        async with service.app.state.runtime.session_factory() as session:
            value = await session.scalar(select(infra.outbox_event.c.value))
        event = json.loads(value)
        assert event["contact"]["email"] == "karim.benali@exemple.fr"
        assert event["relay_email"] == (
            "8d4a1f62-0b3e-5c97-a2e8-1f6d9b0c3a74@messagerie.lacentrale.fr"
        )


async def test_leads_without_a_relay_publish_none(ingest_service: IngestFactory) -> None:
    async with ingest_service() as service:
        raw = fixture("leboncoin_message_text.eml")  # Leboncoin's messaging: no reply address
        answer = await service.client.post("/v1/sources/email", content=raw, headers=EMAIL)
        assert answer.json()["status"] == "accepted"
        async with service.app.state.runtime.session_factory() as session:
            value = await session.scalar(select(infra.outbox_event.c.value))
        assert json.loads(value)["relay_email"] is None


async def test_known_non_leads_are_recorded_as_ignored(ingest_service: IngestFactory) -> None:
    async with ingest_service() as service:
        client = service.client
        answer = await client.post(
            "/v1/sources/email", content=fixture("ignored_leboncoin_alert.eml"), headers=EMAIL
        )
        assert answer.status_code == 202
        assert answer.json()["status"] == "ignored"
        assert answer.json()["reason"] == "portal_search_alert"
        listed = (await client.get("/v1/ignored")).json()["items"]
        assert [item["id"] for item in listed] == [answer.json()["id"]]
        assert listed[0]["reason"] == "portal_search_alert"
        assert await outbox_count(service) == 0


async def test_quarantine_lists_reason_and_retry_reparses(
    ingest_service: IngestFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ingest_service() as service:
        client = service.client
        raw = fixture("leboncoin_form_incomplete.eml")
        answer = await client.post("/v1/sources/email", content=raw, headers=EMAIL)
        assert answer.status_code == 202
        held = answer.json()
        assert held["status"] == "quarantined"
        assert held["reason"] == "leboncoin_form_incomplete"

        page = (await client.get("/v1/quarantine")).json()
        assert [item["id"] for item in page["items"]] == [held["id"]]
        assert page["items"][0]["reason"] == "leboncoin_form_incomplete"

        # No parser change yet: the retry keeps it in quarantine.
        retried = await client.post(f"/v1/quarantine/{held['id']}/retry")
        assert retried.status_code == 200, retried.text
        assert retried.json()["status"] == "open"

        # "Fix the parser", then retry: the entry is resolved into a lead.
        monkeypatch.setattr(layouts, "LEBONCOIN_MIN_FIELDS", 1)
        monkeypatch.setattr(
            "ingest.canonical.contacts.normalize_email", lambda raw: "dupont@exemple.fr"
        )
        resolved = await client.post(f"/v1/quarantine/{held['id']}/retry")
        assert resolved.json()["status"] == "resolved", resolved.text
        (lead_id,) = resolved.json()["lead_ids"]
        lead = (await client.get(f"/v1/leads/{lead_id}")).json()
        assert lead["source"] == "leboncoin"
        assert lead["contact"]["last_name"] == "Dupont"
        assert (await client.get("/v1/quarantine")).json()["items"] == []
        done = (await client.get("/v1/quarantine", params={"status": "resolved"})).json()
        assert done["items"][0]["lead_id"] == lead_id
        assert done["items"][0]["attempts"] == 2
        again = await client.post(f"/v1/quarantine/{held['id']}/retry")
        assert again.status_code == 409
        assert again.headers["content-type"] == PROBLEM
        missing = await client.post("/v1/quarantine/nope/retry")
        assert missing.status_code == 404


async def test_unparseable_email_answers_202_with_quarantine_id(
    ingest_service: IngestFactory,
) -> None:
    async with ingest_service() as service:
        answer = await service.client.post(
            "/v1/sources/email", content=fixture("broken_no_headers.eml"), headers=EMAIL
        )
        assert answer.status_code == 202
        assert answer.json()["status"] == "quarantined"
        assert answer.json()["reason"] == "not_an_email"


async def test_email_limits_and_media_type(ingest_service: IngestFactory) -> None:
    async with ingest_service(max_body_bytes=64 * 1024) as service:
        client = service.client
        big = b"From: a@b.fr\r\n\r\n" + b"x" * (64 * 1024)
        too_large = await client.post("/v1/sources/email", content=big, headers=EMAIL)
        assert too_large.status_code == 413
        assert too_large.headers["content-type"] == PROBLEM
        wrong = await client.post(
            "/v1/sources/email", content=b"x", headers={"Content-Type": "text/plain"}
        )
        assert wrong.status_code == 415
        assert wrong.headers["content-type"] == PROBLEM
        empty = await client.post("/v1/sources/email", content=b"  ", headers=EMAIL)
        assert empty.status_code == 422
        anonymous = await client.post(
            "/v1/sources/email", content=b"x", headers={**EMAIL, "Authorization": ""}
        )
        assert anonymous.status_code == 401


async def test_default_limits_are_15_mib_for_email_and_1_mib_for_json(
    ingest_service: IngestFactory,
) -> None:
    async with ingest_service() as service:
        client = service.client
        body = fixture("generic_prospect_plain.eml") + b"\r\n" + b"a" * (2 * 1024 * 1024)
        answer = await client.post("/v1/sources/email", content=body, headers=EMAIL)
        assert answer.status_code == 202
        big_json = b'{"source": "api", "source_ref": "x", "message": "' + b"a" * 1_100_000 + b'"}'
        refused = await client.post(
            "/v1/leads", content=big_json, headers={"Content-Type": "application/json"}
        )
        assert refused.status_code == 413
        assert refused.headers["content-type"] == PROBLEM
        over = b"From: a@b.fr\r\n\r\n" + b"x" * (15 * 1024 * 1024 + 1)
        assert (
            await client.post("/v1/sources/email", content=over, headers=EMAIL)
        ).status_code == 413


ADF_TWO = b"""<?xml version="1.0" encoding="UTF-8"?>
<?ADF VERSION="1.0"?>
<adf>
 <prospect><id source="partner">P-1</id>
  <vehicle><make>Renault</make><model>Clio</model><price>12 990</price></vehicle>
  <customer><contact><name part="full">Jean Dupont</name><phone>06 12 34 56 78</phone></contact>
  </customer></prospect>
 <prospect><id source="partner">P-2</id>
  <customer><contact><name part="full">Sans Contact</name></contact></customer></prospect>
</adf>"""


async def test_adf_over_http_one_lead_per_prospect(ingest_service: IngestFactory) -> None:
    async with ingest_service() as service:
        client = service.client
        answer = await client.post(
            "/v1/leads", content=ADF_TWO, headers={"Content-Type": "application/x-adf+xml"}
        )
        assert answer.status_code == 202, answer.text
        body = answer.json()
        assert body["status"] == "accepted"
        assert len(body["leads"]) == 1
        assert len(body["quarantine_ids"]) == 1
        lead = (await client.get(f"/v1/leads/{body['id']}")).json()
        assert lead["source"] == "adf"
        assert lead["source_ref"] == "partner:P-1"
        assert lead["vehicle"] == {
            "ad_ref": None, "url": None, "make": "Renault", "model": "Clio", "year": None,
            "price_eur": 12990, "mileage_km": None,
        }  # fmt: skip
        replay = await client.post(
            "/v1/leads", content=ADF_TWO, headers={"Content-Type": "application/xml"}
        )
        assert replay.json()["status"] == "duplicate"
        assert replay.json()["id"] == body["id"]
        assert await outbox_count(service) == 1


@pytest.mark.parametrize(
    ("content", "media_type"),
    [
        (b"<adf><prospect></adf>", "application/xml"),
        (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x">]><adf>&e;</adf>', "application/xml"),
        (b"", "application/xml"),
        (b'{"source": "api",', "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"[]", "application/json"),
        (b'{"source": "api", "source_ref": "r1", "contact": {}}', "application/json"),
    ],
)
async def test_malformed_bodies_are_422_problems(
    ingest_service: IngestFactory, content: bytes, media_type: str
) -> None:
    async with ingest_service() as service:
        answer = await service.client.post(
            "/v1/leads", content=content, headers={"Content-Type": media_type}
        )
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == PROBLEM
        assert "Dupont" not in answer.text


async def test_other_media_types_are_415(ingest_service: IngestFactory) -> None:
    async with ingest_service() as service:
        answer = await service.client.post(
            "/v1/leads", content=b"a=b", headers={"Content-Type": "text/csv"}
        )
        assert answer.status_code == 415
        assert answer.headers["content-type"] == PROBLEM


async def test_every_corpus_email_is_accepted_with_202(ingest_service: IngestFactory) -> None:
    from tests.ingest.corpus import EMAILS

    async with ingest_service() as service:
        statuses = set()
        for path in EMAILS:
            answer = await service.client.post(
                "/v1/sources/email", content=path.read_bytes(), headers=EMAIL
            )
            assert answer.status_code == 202, (path.name, answer.text)
            statuses.add(answer.json()["status"])
        assert statuses == {"accepted", "ignored", "quarantined"}


async def test_raw_inputs_purge_by_age_and_retry_then_answers_409(
    ingest_service: IngestFactory,
) -> None:
    from ingest.raw_inputs.repository import RawInputRepository
    from shared.db.session import session_scope

    clock = Clock()
    async with ingest_service(clock=clock) as service:
        client = service.client
        held = (
            await client.post(
                "/v1/sources/email", content=fixture("lacentrale_unknown_layout.eml"), headers=EMAIL
            )
        ).json()
        factory = service.app.state.runtime.session_factory
        async with session_scope(factory) as session:
            repository = RawInputRepository.from_session(session)
            assert await repository.purge_received_before(clock.now - timedelta(days=30)) == 0
            assert await repository.purge_received_before(clock.now + timedelta(seconds=1)) == 1
        answer = await client.post(f"/v1/quarantine/{held['id']}/retry")
        assert answer.status_code == 409
        assert "purged" in answer.json()["detail"]


async def test_every_timestamp_comes_from_the_runtime_clock(ingest_service: IngestFactory) -> None:
    """HTTP answers follow the clock the app was made with (tests move it; none sleeps)."""
    from ingest.raw_inputs.repository import RawInputRepository

    clock = Clock()
    async with ingest_service(clock=clock) as service:
        client = service.client
        json_lead = {"source": "api", "source_ref": "clock-1", "contact": {"phone": "0612345678"}}
        accepted = (await client.post("/v1/leads", json=json_lead)).json()
        lead = (await client.get(f"/v1/leads/{accepted['id']}")).json()
        assert _instant(lead["received_at"]) == TUESDAY_11H

        held = (
            await client.post(
                "/v1/sources/email", content=fixture("leboncoin_form_incomplete.eml"), headers=EMAIL
            )
        ).json()
        async with service.app.state.runtime.session_factory() as session:
            raw = await RawInputRepository.from_session(session).get(held["raw_input_id"])
        assert raw is not None
        assert raw.received_at == TUESDAY_11H
        entry = (await client.get(f"/v1/quarantine/{held['id']}")).json()
        assert _instant(entry["created_at"]) == TUESDAY_11H

        later = clock.advance(hours=2)
        assert (await client.post(f"/v1/quarantine/{held['id']}/retry")).status_code == 200
        entry = (await client.get(f"/v1/quarantine/{held['id']}")).json()
        assert _instant(entry["created_at"]) == TUESDAY_11H
        assert _instant(entry["updated_at"]) == later


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_no_input_gets_a_500(ingest_service: IngestFactory) -> None:
    import random

    from ingest.sources.facebook.signature import sign
    from tests.ingest.conftest import APP_SECRET
    from tests.ingest.corpus import EMAILS

    generator = random.Random(20260105)
    bodies = [generator.randbytes(generator.randint(0, 3000)) for _ in range(40)]
    for sample in EMAILS[:8]:
        raw = bytearray(sample.read_bytes())
        for _ in range(5):
            raw[generator.randrange(len(raw))] = generator.randrange(256)
        bodies.append(bytes(raw))
    routes = [
        ("/v1/sources/email", {"Content-Type": "message/rfc822"}),
        ("/v1/leads", {"Content-Type": "application/json"}),
        ("/v1/leads", {"Content-Type": "application/xml"}),
    ]
    async with ingest_service() as service:
        for body in bodies:
            for route, headers in routes:
                answer = await service.client.post(route, content=body, headers=headers)
                assert answer.status_code in (202, 413, 415, 422), (route, answer.text)
            signed = {"X-Hub-Signature-256": sign(body, APP_SECRET)}
            answer = await service.client.post(
                "/v1/sources/facebook/webhook", content=body, headers=signed
            )
            assert answer.status_code in (200, 422), answer.text


async def test_openapi_documents_every_ingest_route(ingest_service: IngestFactory) -> None:
    async with ingest_service() as service:
        spec = (await service.client.get("/openapi.json")).json()
    assert {
        "/v1/leads",
        "/v1/leads/{lead_id}",
        "/v1/sources/email",
        "/v1/sources/facebook/webhook",
        "/v1/quarantine",
        "/v1/quarantine/{quarantine_id}/retry",
        "/v1/ignored",
    } <= set(spec["paths"])
    content = spec["paths"]["/v1/leads"]["post"]["requestBody"]["content"]
    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/LeadIn"}
    assert "ContactIn" in spec["components"]["schemas"]
    assert "message/rfc822" in spec["paths"]["/v1/sources/email"]["post"]["requestBody"]["content"]
