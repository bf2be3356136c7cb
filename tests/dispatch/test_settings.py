"""``DISPATCH_PUBLIC_BASE_URL``, the base of every URL sent to sellers' tools, follows where the
API listens unless it is set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from dispatch.models import WebhookDelivery
from dispatch.settings import DispatchSettings
from tests.dispatch.conftest import dispatch_settings, start_dispatch
from tests.support.clock import Clock


@pytest.fixture(autouse=True)
def _no_address_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DISPATCH_PUBLIC_BASE_URL", "DISPATCH_HTTP_HOST", "DISPATCH_HTTP_PORT"):
        monkeypatch.delenv(name, raising=False)


def test_default_is_the_apis_own_address() -> None:
    assert DispatchSettings().public_base_url == "http://127.0.0.1:8003"
    assert DispatchSettings(http_port=9103).public_base_url == "http://127.0.0.1:9103"
    assert (
        DispatchSettings(http_host="10.0.0.7", http_port=80).public_base_url == "http://10.0.0.7:80"
    )
    # A wildcard bind address is not an address to call back.
    assert DispatchSettings(http_host="0.0.0.0").public_base_url == "http://127.0.0.1:8003"


def test_the_environment_moves_it_and_an_explicit_url_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DISPATCH_HTTP_PORT", "9203")
    assert DispatchSettings().public_base_url == "http://127.0.0.1:9203"
    monkeypatch.setenv("DISPATCH_PUBLIC_BASE_URL", "https://dispatch.example.fr")
    assert DispatchSettings().public_base_url == "https://dispatch.example.fr"
    monkeypatch.setenv("DISPATCH_PUBLIC_BASE_URL", "")  # empty: ignored, the default applies
    assert DispatchSettings().public_base_url == "http://127.0.0.1:9203"


async def test_offer_call_backs_point_at_the_port_dispatch_listens_on(
    tmp_path: Path, clock: Clock
) -> None:
    settings = dispatch_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'dispatch.db'}",
        embedded_bus_path=tmp_path / "bus.db",
        http_port=9103,
    )
    async with start_dispatch(settings, clock) as api:
        await api.site()
        await api.seller("A", webhook_url="http://127.0.0.1:9/hook")
        await api.qualify()
        async with api.runtime.session_factory() as session:
            body = await session.scalar(select(WebhookDelivery.body))
    assert body is not None
    callbacks = json.loads(body)["data"]["callbacks"]
    assert callbacks["accept"].startswith("http://127.0.0.1:9103/v1/assignments/")
    assert all(url.startswith("http://127.0.0.1:9103/") for url in callbacks.values())
