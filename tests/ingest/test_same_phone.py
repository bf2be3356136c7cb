"""One phone rule for every channel (issue 11, item 3): a Réunion mobile written nationally,
``0692 45 67 89``, is ``+262692456789`` whether it comes as canonical JSON, ADF, an e-mail or a
Facebook Lead Ads form; a French one stays French, a number with its country code keeps it."""

from __future__ import annotations

import json

import pytest

from ingest.canonical import LeadDraft
from ingest.sources.facebook.fetcher import parse_graph_body
from tests.ingest.conftest import IngestFactory

WRITTEN = "0692 45 67 89"
E164 = "+262692456789"


def _adf(phone: str) -> bytes:
    return (
        '<?xml version="1.0"?><adf><prospect><id source="partner">phone-1</id>'
        f"<customer><contact><name part='full'>Jean Dupont</name><phone>{phone}</phone>"
        "</contact></customer></prospect></adf>"
    ).encode()


def _email(phone: str) -> bytes:
    return (
        "From: Site Garage <site@garage-durand.fr>\r\n"
        "Subject: Demande d'information\r\n"
        "Message-ID: <phone-1@garage-durand.fr>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Nom : Dupont\r\nTéléphone : {phone}\r\nEmail : j.dupont@exemple.fr\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("written", "e164"),
    [
        (WRITTEN, E164),
        ("06.92.45.67.89", E164),
        ("+262 692 45 67 89", E164),
        ("0690 12 34 56", "+590690123456"),  # Guadeloupe
        ("06 12 34 56 78", "+33612345678"),
        ("+32 470 12 34 56", "+32470123456"),
    ],
)
async def test_every_channel_gives_the_same_number(
    ingest_service: IngestFactory, written: str, e164: str
) -> None:
    async with ingest_service() as service:
        client = service.client
        as_json = await client.post(
            "/v1/leads",
            json={"source": "api", "source_ref": "phone-1", "contact": {"phone": written}},
        )
        as_adf = await client.post(
            "/v1/leads", content=_adf(written), headers={"Content-Type": "application/xml"}
        )
        as_email = await client.post(
            "/v1/sources/email",
            content=_email(written),
            headers={"Content-Type": "message/rfc822"},
        )
        phones = []
        for answer in (as_json, as_adf, as_email):
            assert answer.status_code == 202, answer.text
            lead = (await client.get(f"/v1/leads/{answer.json()['id']}")).json()
            phones.append(lead["contact"]["phone"])
        graph = {"id": "9", "field_data": [{"name": "phone_number", "values": [written]}]}
        draft = parse_graph_body(json.dumps(graph).encode())
        assert isinstance(draft, LeadDraft)
        phones.append(draft.contact.phone)
        assert phones == [e164] * 4


@pytest.mark.parametrize("written", ["+33 692 45 67 89", "0692 45 67", "06 92"])
async def test_a_number_no_region_accepts_is_refused_in_json(
    ingest_service: IngestFactory, written: str
) -> None:
    async with ingest_service() as service:
        answer = await service.client.post(
            "/v1/leads",
            json={"source": "api", "source_ref": "phone-2", "contact": {"phone": written}},
        )
        assert answer.status_code == 422, answer.text
        assert [error["field"] for error in answer.json()["errors"]] == ["contact.phone"]
        assert written not in answer.text
