"""The Facebook webhook against a fake Graph API over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from ingest.models import FacebookFetch, RawInput
from ingest.sources.facebook.signature import sign
from tests.ingest.conftest import APP_SECRET, VERIFY_TOKEN, IngestFactory, outbox_count
from tests.ingest.fake_graph import FakeGraph, serve_fake_graph
from tests.support.clock import TUESDAY_11H, Clock
from tests.support.harness import RunningService, eventually

WEBHOOK = "/v1/sources/facebook/webhook"

LEAD = {
    "id": "2718281828459045",
    "created_time": "2026-01-01T10:39:57+0000",
    "ad_id": "120210000000000042",
    "form_id": "3141592653589793",
    "platform": "fb",
    "is_organic": False,
    "field_data": [
        {"name": "full_name", "values": ["Camille Lefèvre"]},
        {"name": "email", "values": ["Camille.Lefevre@Exemple.fr"]},
        {"name": "phone_number", "values": ["+33612345678"]},
        {"name": "city", "values": ["Nantes"]},
        {"name": "zip_code", "values": ["44000"]},
        {"name": "car_make", "values": ["Peugeot"]},
        {"name": "quel_véhicule_vous_intéresse_?", "values": ["Peugeot 3008 GT 2021"]},
        {"name": "options", "values": ["GPS", "Toit ouvrant"]},
    ],
    "custom_disclaimer_responses": [
        {"checkbox_key": "optional_1", "is_checked": "1"},
        {"checkbox_key": "optional_2", "is_checked": ""},
    ],
}


def leadgen(*ids: str) -> dict[str, Any]:
    return {
        "object": "page",
        "entry": [
            {
                "id": "104857600000001",
                "time": 1767261600,
                "changes": [
                    {
                        "field": "leadgen",
                        "value": {
                            "leadgen_id": int(leadgen_id) if index == 0 else leadgen_id,
                            "page_id": "104857600000001",
                            "form_id": "3141592653589793",
                            "ad_id": "120210000000000042",
                            "created_time": 1767261597,
                        },
                    }
                    for index, leadgen_id in enumerate(ids)
                ]
                + [{"field": "feed", "value": {"item": "status"}}],
            }
        ],
    }


ECHO = {
    "sender": {"id": "104857600000001"},
    "recipient": {"id": "6543210987654321"},
    "timestamp": 1767261600000,
    "message": {"mid": "m_echo", "is_echo": True, "app_id": 1, "text": "Oui"},
}

MESSENGER = {
    "object": "page",
    "entry": [
        {
            "id": "104857600000001",
            "time": 1767261600123,
            "messaging": [
                {
                    "sender": {"id": "6543210987654321"},
                    "recipient": {"id": "104857600000001"},
                    "timestamp": 1767261599876,
                    "message": {
                        "mid": "m_AbCdEfGhIjKlMnOp",
                        "text": "Bonjour, la Clio est toujours dispo ? Mon numéro : 06 12 34 56 78",
                    },
                },
                ECHO,
            ],
        }
    ],
}


def signed(document: Any, secret: str = APP_SECRET) -> tuple[bytes, dict[str, str]]:
    # Meta signs the escaped-unicode form: verification must use the exact bytes received.
    body = json.dumps(document).encode()
    return body, {"X-Hub-Signature-256": sign(body, secret), "Content-Type": "application/json"}


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    async with serve_fake_graph() as fake:
        yield fake


async def _count(service: RunningService, model: type[Any]) -> int:
    async with service.app.state.runtime.session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_handshake_echoes_challenge_or_refuses(ingest_service: IngestFactory) -> None:
    async with ingest_service() as service, service.client_as(None) as bare:
        params = {
            "hub.mode": "subscribe",
            "hub.verify_token": VERIFY_TOKEN,
            "hub.challenge": "1158201444",
        }
        ok = await bare.get(WEBHOOK, params=params)
        assert ok.status_code == 200
        assert ok.text == "1158201444"
        assert ok.headers["content-type"].startswith("text/plain")
        wrong = await bare.get(WEBHOOK, params={**params, "hub.verify_token": "nope"})
        assert wrong.status_code == 403
        assert wrong.headers["content-type"] == "application/problem+json"
        mode = await bare.get(WEBHOOK, params={**params, "hub.mode": "unsubscribe"})
        assert mode.status_code == 403


async def test_bad_or_missing_signature_is_401_and_stores_nothing(
    ingest_service: IngestFactory,
) -> None:
    async with ingest_service() as service:
        body, headers = signed(leadgen("1"))
        for bad in (
            {"Content-Type": "application/json"},
            {**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64},
            {**headers, "X-Hub-Signature-256": sign(body, "another-secret")},
            {**headers, "X-Hub-Signature-256": "sha1=abc"},
        ):
            answer = await service.client.post(WEBHOOK, content=body, headers=bad)
            assert answer.status_code == 401
            assert answer.headers["content-type"] == "application/problem+json"
        # Re-serialised JSON (other separators) no longer matches the signature.
        reserialised = json.dumps(json.loads(body), separators=(",", ":")).encode()
        answer = await service.client.post(WEBHOOK, content=reserialised, headers=headers)
        assert answer.status_code == 401
        assert await _count(service, RawInput) == 0
        assert await _count(service, FacebookFetch) == 0


async def test_secret_rotation_accepts_both_secrets(ingest_service: IngestFactory) -> None:
    async with ingest_service(facebook_app_secrets=["old-secret", APP_SECRET]) as service:
        body, headers = signed(MESSENGER, "old-secret")
        assert (
            await service.client.post(WEBHOOK, content=body, headers=headers)
        ).status_code == 200


async def test_leadgen_is_stored_then_fetched_by_the_worker(
    ingest_service: IngestFactory, graph: FakeGraph
) -> None:
    graph.leads["2718281828459045"] = LEAD
    graph.leads["2718281828459046"] = {**LEAD, "id": "2718281828459046", "field_data": []}
    async with ingest_service(worker=True, facebook_graph_url=graph.url) as service:
        body, headers = signed(leadgen("2718281828459045", "2718281828459046"))
        answer = await service.client.post(WEBHOOK, content=body, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "pending"
        assert answer.json()["pending_fetches"] == 2

        async def fetched() -> list[FacebookFetch] | None:
            async with service.app.state.runtime.session_factory() as session:
                rows = list(await session.scalars(select(FacebookFetch)))
            return rows if all(row.status == "done" for row in rows) else None

        rows = {row.leadgen_id: row for row in await eventually(fetched)}
        lead_id = rows["2718281828459045"].lead_id
        assert lead_id is not None
        lead = (await service.client.get(f"/v1/leads/{lead_id}")).json()
        assert lead["source"] == "facebook"
        assert lead["source_ref"] == "2718281828459045"
        assert lead["contact"]["full_name"] == "Camille Lefèvre"
        assert lead["contact"]["email"] == "camille.lefevre@exemple.fr"
        assert lead["contact"]["phone"] == "+33612345678"
        assert lead["vehicle"]["make"] == "Peugeot"
        assert lead["received_at"].startswith("2026-01-01T10:39:57")
        assert lead["consents"] == {"optional_1": True, "optional_2": False}
        assert lead["extra"]["postcode"] == "44000"
        assert lead["extra"]["answers"] == {
            "quel_véhicule_vous_intéresse_?": "Peugeot 3008 GT 2021",
            "options": "GPS, Toit ouvrant",
        }
        # An empty lead (no contact) lands in quarantine, with its Graph response kept.
        assert rows["2718281828459046"].lead_id is None
        held = (await service.client.get("/v1/quarantine")).json()["items"]
        assert [item["reason"] for item in held] == ["no_contact_details"]
        assert graph.requests[0]["version"] == "v25.0"
        assert graph.requests[0]["access_token"] == "page-token"
        assert "field_data" in graph.requests[0]["fields"]

        # Meta retries the same notification: nothing new is fetched or published.
        requests = len(graph.requests)
        again = await service.client.post(WEBHOOK, content=body, headers=headers)
        assert again.status_code == 200
        assert again.json()["pending_fetches"] == 0
        assert await _count(service, FacebookFetch) == 2
        assert len(graph.requests) == requests


async def test_failed_fetches_are_retried_with_backoff_then_quarantined(
    ingest_service: IngestFactory, graph: FakeGraph
) -> None:
    graph.leads["111"] = {**LEAD, "id": "111"}
    graph.failures["111"] = [500, 429, 500, 500]
    async with ingest_service(
        worker=True, facebook_graph_url=graph.url, facebook_fetch_max_attempts=3
    ) as service:
        body, headers = signed(leadgen("111"))
        await service.client.post(WEBHOOK, content=body, headers=headers)

        async def quarantined() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = (await service.client.get("/v1/quarantine")).json()[
                "items"
            ]
            return items

        (held,) = await eventually(quarantined)
        assert held["reason"] == "graph_fetch_failed"
        assert held["detail"] == "http 500 code 80005"
        assert len(graph.requests) == 3  # the configured attempts, no more
        async with service.app.state.runtime.session_factory() as session:
            fetch = await session.scalar(select(FacebookFetch))
        assert fetch is not None
        assert fetch.status == "quarantined"
        assert fetch.attempts == 3

        # The retry endpoint re-queues the fetch; the Graph API has recovered.
        retried = await service.client.post(f"/v1/quarantine/{held['id']}/retry")
        assert retried.json()["status"] == "requeued"

        async def done() -> str | None:
            async with service.app.state.runtime.session_factory() as session:
                row = await session.scalar(select(FacebookFetch))
            return row.lead_id if row is not None and row.status == "done" else None

        lead_id = await eventually(done)
        lead = (await service.client.get(f"/v1/leads/{lead_id}")).json()
        assert lead["source_ref"] == "111"


async def test_a_failed_fetch_waits_for_its_backoff_on_the_runtime_clock(
    ingest_service: IngestFactory, graph: FakeGraph
) -> None:
    graph.leads["222"] = {**LEAD, "id": "222"}
    graph.failures["222"] = [500]
    clock = Clock()
    async with ingest_service(
        worker=True, clock=clock, facebook_graph_url=graph.url, facebook_fetch_backoff_s=60
    ) as service:
        body, headers = signed(leadgen("222"))
        assert (await service.client.post(WEBHOOK, content=body, headers=headers)).is_success

        async def failed_once() -> FacebookFetch | None:
            async with service.app.state.runtime.session_factory() as session:
                row = await session.scalar(select(FacebookFetch))
            return row if row is not None and row.attempts == 1 else None

        fetch = await eventually(failed_once)
        assert fetch.next_attempt_at == TUESDAY_11H + timedelta(seconds=60)
        await asyncio.sleep(0.3)  # several polls of the worker: the clock has not moved
        assert len(graph.requests) == 1

        clock.advance(seconds=60)

        async def done() -> str | None:
            async with service.app.state.runtime.session_factory() as session:
                row = await session.scalar(select(FacebookFetch))
            return row.lead_id if row is not None and row.status == "done" else None

        lead_id = await eventually(done)
        assert len(graph.requests) == 2
        lead = (await service.client.get(f"/v1/leads/{lead_id}")).json()
        assert lead["source_ref"] == "222"


async def test_messenger_message_becomes_a_message_lead_without_contact(
    ingest_service: IngestFactory,
) -> None:
    async with ingest_service() as service:
        body, headers = signed(MESSENGER)
        answer = await service.client.post(WEBHOOK, content=body, headers=headers)
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["status"] == "accepted"
        assert len(result["leads"]) == 1
        lead = (await service.client.get(f"/v1/leads/{result['id']}")).json()
        assert lead["kind"] == "message"
        assert lead["source"] == "facebook"
        assert lead["source_ref"] == "messenger:m_AbCdEfGhIjKlMnOp"
        assert lead["contact"] == {
            "first_name": None, "last_name": None, "full_name": None, "email": None,
            "phone": None, "email_key": None, "email_is_relay": False, "phone_raw": None,
        }  # fmt: skip
        assert lead["extra"] == {"psid": "6543210987654321", "page_id": "104857600000001"}
        assert lead["message"].startswith("Bonjour, la Clio")
        replay = await service.client.post(WEBHOOK, content=body, headers=headers)
        assert replay.json()["status"] == "duplicate"
        assert replay.json()["id"] == result["id"]
        assert await outbox_count(service) == 1


async def test_echo_only_notification_is_recorded_as_ignored(
    ingest_service: IngestFactory,
) -> None:
    async with ingest_service() as service:
        echo = {"object": "page", "entry": [{"id": "1", "messaging": [ECHO]}]}
        body, headers = signed(echo)
        answer = await service.client.post(WEBHOOK, content=body, headers=headers)
        assert answer.json()["status"] == "ignored"
        assert answer.json()["reason"] == "no_lead_in_notification"


@pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b'"text"', b"{" * 100_000])
async def test_signed_but_malformed_body_is_422(
    ingest_service: IngestFactory, content: bytes
) -> None:
    async with ingest_service() as service:
        headers = {"X-Hub-Signature-256": sign(content, APP_SECRET)}
        answer = await service.client.post(WEBHOOK, content=content, headers=headers)
        assert answer.status_code == 422
        assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "signature",
    [
        "sha256=é" + "0" * 63,  # non-ASCII: compare_digest raised TypeError (a 500)
        "sha256=\u2603",
        "sha256=" + "g" * 64,
        "sha256=" + "0" * 63,
        "sha256=",
    ],
)
async def test_a_signature_header_of_any_text_is_a_401_problem(
    ingest_service: IngestFactory, signature: str
) -> None:
    async with ingest_service() as service:
        body, _ = signed(MESSENGER)
        # Starlette decodes header bytes as latin-1: send what a client could send.
        raw_headers = [
            (b"content-type", b"application/json"),
            (b"x-hub-signature-256", signature.encode("utf-8")),
        ]
        answer = await service.client.post(WEBHOOK, content=body, headers=raw_headers)
        assert answer.status_code == 401, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert await _count(service, RawInput) == 0


def _entry(**fields: Any) -> dict[str, Any]:
    return {"object": "page", "entry": [{"id": "1", **fields}]}


MALFORMED = [
    ({"object": "page", "entry": 7}, "body.entry: not a list"),
    ({"object": "page", "entry": [True]}, "entry[0]: not an object"),
    (_entry(changes=5), "entry[0].changes: not a list"),
    (_entry(changes=True), "entry[0].changes: not a list"),
    (_entry(changes="leadgen"), "entry[0].changes: not a list"),
    (_entry(messaging=0), "entry[0].messaging: not a list"),
    (_entry(messaging=False), "entry[0].messaging: not a list"),
    (_entry(messaging={"a": 1}), "entry[0].messaging: not a list"),
    (_entry(changes=[3]), "entry[0].changes[0]: not an object"),
    (
        _entry(changes=[{"field": "leadgen", "value": 1}]),
        "entry[0].changes[0].value: not an object",
    ),
    (
        _entry(changes=[{"field": "leadgen", "value": {"page_id": "1"}}]),
        "entry[0].changes[0].value.leadgen_id: missing or not a number or string",
    ),
    (_entry(messaging=[[]]), "entry[0].messaging[0]: not an object"),
    (_entry(messaging=[{"message": "Bonjour"}]), "entry[0].messaging[0].message: not an object"),
    (
        _entry(messaging=[{"message": {"text": "Bonjour"}}]),
        "entry[0].messaging[0].message.mid: missing or not a string",
    ),
]


@pytest.mark.parametrize(("document", "detail"), MALFORMED)
async def test_a_signed_notification_of_another_shape_is_quarantined_not_a_500(
    ingest_service: IngestFactory, document: dict[str, Any], detail: str
) -> None:
    """Meta signed it, so it is kept: quarantined with the path of what is wrong (never a
    value) and answered 200 (Meta retries anything else, for days)."""
    async with ingest_service() as service:
        body, headers = signed(document)
        answer = await service.client.post(WEBHOOK, content=body, headers=headers)
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["status"] == "quarantined"
        assert result["reason"] == "facebook_notification_malformed"
        entry = (await service.client.get(f"/v1/quarantine/{result['id']}")).json()
        assert entry["detail"] == detail
        assert entry["channel"] == "facebook"
        assert "Bonjour" not in answer.text + json.dumps(entry)


async def test_the_readable_parts_of_a_malformed_notification_are_taken_and_a_retry_adds_nothing(
    ingest_service: IngestFactory,
) -> None:
    messages: Any = MESSENGER["entry"]
    document = leadgen("333")
    document["entry"].append({"id": "2", "changes": 12, "messaging": messages[0]["messaging"]})
    async with ingest_service() as service:
        body, headers = signed(document)
        answer = await service.client.post(WEBHOOK, content=body, headers=headers)
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["status"] == "accepted"  # the Messenger message became a lead
        assert result["pending_fetches"] == 1  # the leadgen id is staged for the worker
        (held_id,) = result["quarantine_ids"]
        held = (await service.client.get(f"/v1/quarantine/{held_id}")).json()
        assert held["detail"] == "entry[1].changes: not a list"
        assert await _count(service, FacebookFetch) == 1
        assert await outbox_count(service) == 1

        # Today's parser reads it the same way: the entry stays open, nothing is doubled.
        retried = (await service.client.post(f"/v1/quarantine/{held_id}/retry")).json()
        assert retried["status"] == "open"
        assert retried["reason"] == "facebook_notification_malformed"
        assert await _count(service, FacebookFetch) == 1
        assert await outbox_count(service) == 1
