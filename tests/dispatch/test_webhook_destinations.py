"""Webhooks go to public addresses only (issue 11, item 5: server-side request forgery): a
``webhook_url`` on a loopback, private or link-local address (``http://169.254.169.254/…`` was
a 201) is a 422 naming the field unless ``DISPATCH_WEBHOOK_ALLOWED_NETWORKS`` allows it; at
delivery every address the host resolves to is checked and the connection goes to a checked
one (DNS rebinding); a refused delivery is one recorded failure, never retried."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from dispatch.models import Seller, WebhookAttempt, WebhookDelivery
from dispatch.webhooks.delivery import webhook_http_client
from dispatch.webhooks.destinations import DestinationPolicy, DestinationRefused, webhook_client
from shared.db.session import session_scope
from tests.dispatch.conftest import DispatchApi, Receiver, dispatch_settings, start_dispatch
from tests.support.clock import Clock

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))

REFUSED_URLS = [
    ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
    ("http://127.0.0.1:8080/hook", "a loopback address"),
    ("http://2130706433/hook", "a loopback address"),  # 127.0.0.1 written as a number
    ("http://0x7f.1/hook", "a loopback address"),
    ("http://[::1]/hook", "a loopback address"),
    ("http://localhost:8080/hook", "a loopback address"),
    ("http://api.localhost/hook", "a loopback address"),
    ("http://10.0.0.5/hook", "a private address"),
    ("http://172.16.3.4/hook", "a private address"),
    ("http://192.168.1.10/hook", "a private address"),
    ("http://100.64.0.1/hook", "a reserved address"),  # carrier-grade NAT
    ("http://0.0.0.0/hook", "an unspecified address"),
    ("http://[fd00::1]/hook", "a private address"),
    ("http://[fe80::1]/hook", "a link-local address"),
    ("http://[::ffff:169.254.169.254]/hook", "a link-local address"),  # IPv4-mapped
    ("http://[64:ff9b::a9fe:a9fe]/hook", "a link-local address"),  # NAT64
    ("http://[2002:7f00:1::]/hook", "a loopback address"),  # 6to4 of 127.0.0.1
    ("http://224.0.0.1/hook", "a multicast address"),
    ("https://user:secret@hooks.example.fr/hook", "credentials are not accepted"),
]


@asynccontextmanager
async def dispatch_allowing(
    tmp_path: Path, clock: Clock, *networks: str
) -> AsyncIterator[DispatchApi]:
    settings = dispatch_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'dispatch.db'}",
        embedded_bus_path=tmp_path / "bus.db",
        webhook_allowed_networks=networks,
        webhook_disable_after_failures=3,
    )
    async with start_dispatch(settings, clock) as api:
        yield api


async def _new_seller(api: DispatchApi, **values: Any) -> httpx.Response:
    body = {"display_name": "Tool", "mode": "full_web", "shifts": "mon-sun 00:00-24:00"}
    return await api.admin.post("/v1/sellers", json={**body, **values})


def _refused_field(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    [error] = answer.json()["errors"]
    assert (error["field"], error["location"]) == ("webhook_url", "body")
    return dict(error)


@pytest.mark.parametrize(("url", "why"), REFUSED_URLS)
async def test_a_webhook_url_on_an_inner_address_is_a_422_naming_it(
    tmp_path: Path, clock: Clock, url: str, why: str
) -> None:
    async with dispatch_allowing(tmp_path, clock) as api:
        error = _refused_field(await _new_seller(api, webhook_url=url))
        assert error["message"].startswith(why)
        created = await _new_seller(api, webhook_url="https://hooks.example.fr/vo")
        assert created.status_code == 201, created.text
        patched = await api.admin.patch(
            f"/v1/sellers/{created.json()['id']}", json={"webhook_url": url}
        )
        _refused_field(patched)
        seller = (await api.admin.get(f"/v1/sellers/{created.json()['id']}")).json()
        assert seller["webhook_url"] == "https://hooks.example.fr/vo"


@pytest.mark.parametrize(
    "url", ["ftp://hooks.example.fr/x", "file:///etc/passwd", "gopher://127.0.0.1:25/x"]
)
async def test_only_http_and_https_urls_are_accepted(
    tmp_path: Path, clock: Clock, url: str
) -> None:
    async with dispatch_allowing(tmp_path, clock) as api:
        _refused_field(await _new_seller(api, webhook_url=url))


async def test_a_url_longer_than_its_column_is_a_422(tmp_path: Path, clock: Clock) -> None:
    async with dispatch_allowing(tmp_path, clock) as api:
        _refused_field(await _new_seller(api, webhook_url="https://h.fr/" + "é" * 200))


async def test_the_allow_list_lets_loopback_in_and_nothing_else(
    tmp_path: Path, clock: Clock
) -> None:
    async with dispatch_allowing(tmp_path, clock, "127.0.0.0/8", "::1/128") as api:
        for url in ("http://127.0.0.1:9/hook", "http://[::1]:9/hook", "http://localhost:9/h"):
            assert (await _new_seller(api, webhook_url=url)).status_code == 201, url
        _refused_field(await _new_seller(api, webhook_url="http://169.254.169.254/"))
        _refused_field(await _new_seller(api, webhook_url="http://10.0.0.5/"))


def test_the_policy_judges_every_kind_of_address() -> None:
    policy = DestinationPolicy()
    public = ["8.8.8.8", "2a00:1450:4007:80e::200e", "::ffff:8.8.8.8", "64:ff9b::808:808"]
    for address in public:
        assert policy.address_refusal(ipaddress.ip_address(address)) is None, address
    for url, why in REFUSED_URLS:
        assert (policy.url_refusal(url) or "").startswith(why), url
    assert policy.url_refusal("https://hooks.example.fr/x") is None  # a name: resolved later
    allowing = DestinationPolicy(LOOPBACK)
    assert allowing.address_refusal(ipaddress.ip_address("::ffff:127.0.0.1")) is None
    assert allowing.address_refusal(ipaddress.ip_address("169.254.169.254")) == "a link-local"


# -- at delivery ------------------------------------------------------------------------------


def _resolving(table: dict[str, list[str]]) -> Any:
    calls: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return table[host]

    resolver.calls = calls  # type: ignore[attr-defined]
    return resolver


async def _hooked_seller(api: DispatchApi, receiver: Receiver, url: str) -> dict[str, Any]:
    answer = await _new_seller(api, webhook_url=url)
    assert answer.status_code == 201, answer.text
    seller = dict(answer.json())
    receiver.secrets["tool"] = seller["webhook_secret"]
    await api.qualify(channel="full_web")
    return seller


async def _outcomes(api: DispatchApi, seller_id: str) -> list[tuple[str, str | None, bool]]:
    deliveries = (
        await api.admin.get("/v1/webhook-deliveries", params={"seller_id": seller_id})
    ).json()
    return [
        (item["status"], item["last_outcome"], item["next_attempt_at"] is None)
        for item in deliveries
    ]


async def test_a_name_that_resolves_to_an_inner_address_is_refused_once_not_retried(
    tmp_path: Path, clock: Clock, receiver: Receiver
) -> None:
    """DNS rebinding: public at registration, 127.0.0.1 at delivery."""
    port = receiver.base_url.rsplit(":", 1)[1]
    async with dispatch_allowing(tmp_path, clock) as api:
        seller = await _hooked_seller(api, receiver, f"http://hooks.example.fr:{port}/hooks/tool")
        resolver = _resolving({"hooks.example.fr": ["127.0.0.1"]})
        policy = api.settings.webhook_destinations()
        async with webhook_client(policy, timeout=5, resolver=resolver) as client:
            assert await api.sender(client).send_due() == 1
            clock.advance(hours=30)
            assert await api.sender(client).send_due() == 0  # no retry, ever
        assert receiver.of("tool") == []
        assert resolver.calls == ["hooks.example.fr"]
        assert await _outcomes(api, seller["id"]) == [("failed", "destination_refused", True)]
        assert await api.count(WebhookAttempt) == 1


async def test_every_resolved_address_is_checked_and_the_checked_one_is_used(
    tmp_path: Path, clock: Clock, receiver: Receiver
) -> None:
    port = receiver.base_url.rsplit(":", 1)[1]
    async with dispatch_allowing(tmp_path, clock, "127.0.0.0/8") as api:
        seller = await _hooked_seller(api, receiver, f"http://hooks.example.fr:{port}/hooks/tool")
        policy = api.settings.webhook_destinations()
        mixed = _resolving({"hooks.example.fr": ["127.0.0.1", "10.1.2.3"]})
        async with webhook_client(policy, timeout=5, resolver=mixed) as client:
            assert await api.sender(client).send_due() == 1
        assert receiver.of("tool") == []
        assert await _outcomes(api, seller["id"]) == [("failed", "destination_refused", True)]

        # Allowed: the connection goes to the address that was checked (no other resolution:
        # the system's resolver does not know hooks.example.fr as 127.0.0.1).
        await api.qualify(channel="full_web")
        allowed = _resolving({"hooks.example.fr": ["127.0.0.1"]})
        async with webhook_client(policy, timeout=5, resolver=allowed) as client:
            assert await api.sender(client).send_due() == 1
        [message] = receiver.of("tool")
        assert message.event_type == "assignment.offered"


async def test_a_stored_url_refused_today_is_not_connected_to(
    tmp_path: Path, clock: Clock, receiver: Receiver
) -> None:
    """A URL stored before the check (or before the allow-list changed) is refused by the sender
    before any connection, and by the worker's client if it got that far."""
    async with dispatch_allowing(tmp_path, clock) as api:
        created = await _new_seller(api, webhook_url="https://hooks.example.fr/vo")
        seller_id = created.json()["id"]
        async with session_scope(api.runtime.session_factory) as session:
            seller = await session.get(Seller, seller_id)
            assert seller is not None
            seller.webhook_url = receiver.url("tool")  # 127.0.0.1, written past the API
        receiver.secrets["tool"] = created.json()["webhook_secret"]
        await api.qualify(channel="full_web")
        assert await api.deliver() == 1
        assert receiver.of("tool") == []
        assert await _outcomes(api, seller_id) == [("failed", "destination_refused", True)]

        async with webhook_http_client(api.settings) as client:
            with pytest.raises(DestinationRefused):
                await client.post(receiver.url("tool"), content=b"{}")
        assert receiver.of("tool") == []


async def test_refused_deliveries_count_toward_the_auto_disable(
    tmp_path: Path, clock: Clock, receiver: Receiver
) -> None:
    port = receiver.base_url.rsplit(":", 1)[1]
    async with dispatch_allowing(tmp_path, clock) as api:
        seller = await _hooked_seller(api, receiver, f"http://hooks.example.fr:{port}/hooks/tool")
        for _ in range(api.settings.webhook_disable_after_failures - 1):
            await api.qualify(channel="full_web")
        resolver = _resolving({"hooks.example.fr": ["10.0.0.1"]})
        policy = api.settings.webhook_destinations()
        async with webhook_client(policy, timeout=5, resolver=resolver) as client:
            sent = await api.sender(client).send_due()
        assert sent == api.settings.webhook_disable_after_failures
        state = (await api.admin.get(f"/v1/sellers/{seller['id']}")).json()
        assert state["webhook_disabled_reason"] == "too_many_failures"
        assert await api.count(WebhookDelivery, WebhookDelivery.status == "pending") == 0


def test_no_address_is_guessed_from_a_url_without_host() -> None:
    assert DestinationPolicy().url_refusal("http:///hook") == "the URL has no host"
    assert DestinationPolicy().url_refusal(f"http://[{uuid.uuid4()}]/") is not None
