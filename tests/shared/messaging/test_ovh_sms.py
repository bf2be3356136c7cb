"""The OVHcloud SMS adapter against a local server speaking OVH's API over real HTTP
(tests/support/fake_ovh.py): signed calls, jobs, delivery receipts pushed and polled, inbound
messages, failures classified, and nothing personal in error texts."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from pydantic import SecretStr

from shared.messaging.errors import NotConfigured, PermanentSendError, TransientSendError
from shared.messaging.settings import OvhSmsSettings
from shared.messaging.sms.ovh import OvhSmsProvider, ovh_signature
from shared.messaging.sms.provider import (
    DeliveryReceipt,
    InvalidProviderPayload,
    OutgoingSms,
    SmsProvider,
)
from shared.messaging.sms_text import fit_sms, is_stop_request
from shared.redact import safe_error_text
from tests.support.fake_ovh import FakeOvh, serve_fake_ovh
from tests.support.http_server import serve

PHONE = "+33612345678"


@pytest.fixture
async def ovh() -> AsyncIterator[FakeOvh]:
    async with serve_fake_ovh() as fake:
        yield fake


@pytest.fixture
async def provider(ovh: FakeOvh) -> AsyncIterator[OvhSmsProvider]:
    adapter = OvhSmsProvider(ovh.settings())
    yield adapter
    await adapter.aclose()


def test_signature_matches_the_documented_formula() -> None:
    body = b'{"message":"Bonjour"}'
    expected = hashlib.sha1(
        b"AS+CK+POST+https://eu.api.ovh.com/1.0/sms/sms-x-1/jobs+" + body + b"+1700000000"
    ).hexdigest()
    signature = ovh_signature(
        application_secret="AS",
        consumer_key="CK",
        method="post",
        url="https://eu.api.ovh.com/1.0/sms/sms-x-1/jobs",
        body=body,
        timestamp=1700000000,
    )
    assert signature == "$1$" + expected


def test_the_adapter_satisfies_the_interface() -> None:
    adapter: SmsProvider = OvhSmsProvider(OvhSmsSettings())
    assert adapter.name == "ovh"
    assert not adapter.configured


async def test_send_posts_a_signed_job(ovh: FakeOvh, provider: OvhSmsProvider) -> None:
    text = fit_sms("Bonjour Hélène, Garage Dupont vous rappelle demain à 10h.", max_segments=1)
    sent = await provider.send(OutgoingSms(to=PHONE, text=text, tag="m42"))
    [job] = ovh.jobs
    assert sent.provider_message_id == str(job["ids"][0])
    assert sent.credits == 1.0
    assert job["message"] == text
    assert job["receivers"] == [PHONE]
    assert job["coding"] == "7bit"  # é and à are in the GSM table
    assert job["noStopClause"] is True  # our opt-out line is in the text already
    assert job["senderForResponse"] is True  # no sender name: replies are possible
    assert job["tag"] == "m42"
    assert ovh.refused == []


async def test_send_with_a_sender_name_and_ucs2(ovh: FakeOvh) -> None:
    adapter = OvhSmsProvider(ovh.settings(ovh_sms_sender="GarageDupnt"))
    try:
        await adapter.send(OutgoingSms(to="0033612345678", text="Votre cœur de gamme"))
    finally:
        await adapter.aclose()
    [job] = ovh.jobs
    assert job["sender"] == "GarageDupnt"
    assert "senderForResponse" not in job
    assert job["coding"] == "8bit"
    assert job["receivers"] == [PHONE]


async def test_ovh_clock_is_followed(ovh: FakeOvh) -> None:
    ovh.clock_offset_s = 3600  # our clock is an hour behind OVH's
    adapter = OvhSmsProvider(ovh.settings())
    try:
        await adapter.send(OutgoingSms(to=PHONE, text="Bonjour"))
    finally:
        await adapter.aclose()
    assert ovh.refused == []
    assert len(ovh.jobs) == 1


@pytest.mark.parametrize(
    ("settings_override", "refusal"),
    [
        ({"ovh_application_secret": "wrong-secret"}, "INVALID_SIGNATURE"),
        ({"ovh_consumer_key": "revoked-consumer-key"}, "INVALID_CREDENTIAL"),
        ({"ovh_application_key": "unknown-key"}, "INVALID_KEY"),
    ],
)
async def test_credential_problems_are_transient(
    ovh: FakeOvh, settings_override: dict[str, str], refusal: str
) -> None:
    adapter = OvhSmsProvider(ovh.settings(**settings_override))
    try:
        with pytest.raises(TransientSendError) as caught:
            await adapter.send(OutgoingSms(to=PHONE, text="Bonjour"))
    finally:
        await adapter.aclose()
    assert ovh.refused == [refusal]
    assert ovh.jobs == []
    assert PHONE not in safe_error_text(caught.value)


async def test_outages_are_transient_and_bad_requests_permanent(
    ovh: FakeOvh, provider: OvhSmsProvider
) -> None:
    ovh.failures = [503, 429, 400]
    sms = OutgoingSms(to=PHONE, text="Bonjour Hélène")
    for status in (503, 429):
        with pytest.raises(TransientSendError) as transient:
            await provider.send(sms)
        assert transient.value.code == status
    with pytest.raises(PermanentSendError) as permanent:
        await provider.send(sms)
    assert permanent.value.code == 400
    assert (await provider.send(sms)).provider_message_id


async def test_an_invalid_number_is_permanent(ovh: FakeOvh, provider: OvhSmsProvider) -> None:
    ovh.invalid_numbers.add(PHONE)
    with pytest.raises(PermanentSendError) as caught:
        await provider.send(OutgoingSms(to=PHONE, text="Bonjour"))
    assert str(caught.value) == "OVH refused the SMS: invalid receiver"
    assert PHONE not in safe_error_text(caught.value)


async def test_unreachable_api_is_transient() -> None:
    adapter = OvhSmsProvider(
        OvhSmsSettings(
            ovh_endpoint="http://127.0.0.1:9/1.0",
            ovh_application_key="k",
            ovh_application_secret=SecretStr("s"),
            ovh_consumer_key=SecretStr("c"),
            ovh_sms_service_name="sms-x-1",
        )
    )
    try:
        with pytest.raises(TransientSendError, match="unreachable"):
            await adapter.send(OutgoingSms(to=PHONE, text="Bonjour"))
    finally:
        await adapter.aclose()


async def test_not_configured() -> None:
    adapter = OvhSmsProvider(OvhSmsSettings())
    try:
        with pytest.raises(NotConfigured):
            await adapter.send(OutgoingSms(to=PHONE, text="Bonjour"))
    finally:
        await adapter.aclose()


@dataclass
class CallbackReceiver:
    """Our side of the delivery callback: an HTTP endpoint that parses what OVH sends."""

    provider: OvhSmsProvider
    receipts: list[DeliveryReceipt] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/sms/ovh/delivery")
        async def delivery(request: Request) -> PlainTextResponse:
            self.receipts.append(self.provider.parse_delivery_receipt(request.query_params))
            return PlainTextResponse("OK")

        return app


async def test_delivery_receipts_pushed_to_the_callback_and_polled(
    ovh: FakeOvh, provider: OvhSmsProvider
) -> None:
    receiver = CallbackReceiver(provider)
    async with serve(receiver.app()) as base:
        await provider.set_delivery_callback(f"{base}/sms/ovh/delivery")
        assert ovh.account["callBack"] == f"{base}/sms/ovh/delivery"
        sent = await provider.send(OutgoingSms(to=PHONE, text="Bonjour"))
        assert (await provider.fetch_delivery_receipt(sent.provider_message_id)).state == (
            "accepted"
        )
        answer = await ovh.deliver(sent.provider_message_id, dlr=8)
        assert answer.status_code == 200
        answer = await ovh.deliver(sent.provider_message_id, dlr=1)
        assert answer.status_code == 200
    assert [(r.provider_message_id, r.state, r.code) for r in receiver.receipts] == [
        (sent.provider_message_id, "accepted", "8"),
        (sent.provider_message_id, "delivered", "1"),
    ]
    polled = await provider.fetch_delivery_receipt(sent.provider_message_id)
    assert (polled.state, polled.code) == ("delivered", "1")
    assert polled.at is not None


@pytest.mark.parametrize(
    ("dlr", "state"), [("1", "delivered"), ("2", "failed"), ("4", "pending"), ("16", "failed")]
)
def test_receipt_codes(dlr: str, state: str) -> None:
    receipt = OvhSmsProvider(OvhSmsSettings()).parse_delivery_receipt({"id": "123", "dlr": dlr})
    assert receipt.state == state


@pytest.mark.parametrize(
    "params", [{"id": "123"}, {"dlr": "1"}, {"id": "abc", "dlr": "1"}, {"id": "1", "dlr": "3"}]
)
def test_unreadable_receipts(params: dict[str, str]) -> None:
    with pytest.raises(InvalidProviderPayload):
        OvhSmsProvider(OvhSmsSettings()).parse_delivery_receipt(params)


async def test_inbound_messages_are_fetched_then_acknowledged(
    ovh: FakeOvh, provider: OvhSmsProvider
) -> None:
    first = ovh.receive("0033612345678", "Oui je suis disponible samedi à 11h")
    second = ovh.receive(PHONE, "STOP")
    overseas = ovh.receive("0692 45 67 89", "Rappelez-moi")  # read with the one phone rule
    short_code = ovh.receive("36180", "Info")  # not a phone: kept as given
    inbound = await provider.fetch_inbound()
    assert [(m.provider_message_id, m.sender) for m in inbound] == [
        (str(first), PHONE),
        (str(second), PHONE),
        (str(overseas), "+262692456789"),
        (str(short_code), "36180"),
    ]
    assert inbound[0].text == "Oui je suis disponible samedi à 11h"
    assert inbound[0].received_at is not None
    assert [is_stop_request(m.text) for m in inbound] == [False, True, False, False]
    for message in inbound:
        await provider.acknowledge_inbound(message.provider_message_id)
    assert ovh.incoming == {}
    assert await provider.fetch_inbound() == []


@pytest.mark.parametrize(
    "payload",
    [
        {"sender": PHONE, "message": "x"},
        {"id": 1, "message": "x"},
        {"id": 1, "sender": PHONE},
        {"id": "", "sender": PHONE, "message": "x"},
    ],
)
def test_unreadable_inbound(payload: dict[str, object]) -> None:
    with pytest.raises(InvalidProviderPayload) as caught:
        OvhSmsProvider(OvhSmsSettings()).parse_inbound(payload)
    assert PHONE not in str(caught.value)


async def test_sent_sms_are_found_by_their_tag(ovh: FakeOvh, provider: OvhSmsProvider) -> None:
    assert await provider.find_sent("m-1") == []
    sent = await provider.send(OutgoingSms(PHONE, "Bonjour\nSTOP au 36111", tag="m-1"))
    await provider.send(OutgoingSms(PHONE, "Autre", tag="m-2"))
    assert await provider.find_sent("m-1") == [sent.provider_message_id]
    assert ovh.refused == []  # signed with the query string, as OVH checks
