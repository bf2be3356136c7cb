"""Signed webhook delivery to a real receiver on 127.0.0.1: signatures verified with
standardwebhooks, retries on the schedule, Retry-After on 429/503, 410 disables, auto-disable
after repeated failures with a manager alert, delivery log without personal data, replay."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from dispatch.models import ManagerAlert, WebhookDelivery
from dispatch.webhooks.delivery import parse_retry_after
from tests.dispatch.conftest import DispatchApi, Receiver, dispatch_settings, start_dispatch
from tests.support.clock import Clock


async def _seller_with_hook(dispatch: DispatchApi, receiver: Receiver, name: str) -> dict[str, Any]:
    seller = await dispatch.seller(name, webhook_url=receiver.url(name))
    receiver.secrets[name] = seller["webhook_secret"]
    return seller


async def _deliveries(dispatch: DispatchApi, **params: str) -> list[dict[str, Any]]:
    response = await dispatch.admin.get("/v1/webhook-deliveries", params=params)
    assert response.status_code == 200
    return list(response.json())


async def test_offer_is_signed_and_carries_lead_deadlines_and_callbacks(
    dispatch: DispatchApi, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    await dispatch.site()
    seller = await _seller_with_hook(dispatch, receiver, "alice")
    lead = await dispatch.qualify()
    async with httpx.AsyncClient() as client:
        assert await dispatch.sender(client).send_due() == 1
    [message] = receiver.of("alice")
    assert receiver.rejected == 0
    assert message.event_type == "assignment.offered"
    data = message.payload["data"]
    assert data["lead"]["lead_id"] == lead
    assert data["lead"]["contact"]["phone"] == "+33612345678"  # the seller needs it
    assert set(data["callbacks"]) == {
        "accept",
        "decline",
        "contacted",
        "appointment",
        "reschedule",
        "no-show",
        "sold",
        "lost",
        "hand-back",
    }
    assert data["callbacks"]["no-show"].endswith(f"/{data['assignment']['id']}/no-show")
    assert data["deadlines"]["accept_by"]
    [delivery] = await _deliveries(dispatch, seller_id=seller["id"])
    assert delivery["status"] == "delivered"
    assert delivery["id"] == message.webhook_id
    # The delivery log holds no personal data.
    assert "body" not in delivery
    attempts = (
        await dispatch.admin.get(f"/v1/webhook-deliveries/{delivery['id']}/attempts")
    ).json()
    assert [(a["attempt"], a["status_code"], a["outcome"]) for a in attempts] == [
        (1, 204, "delivered")
    ]
    assert "+3361" not in str(attempts) + str(delivery)
    # Nor do the logs (offer, delivery attempt, requests).
    captured = capsys.readouterr()
    logs = captured.out + captured.err
    assert "dispatch.webhook_attempt" in logs
    assert "dispatch.offered" in logs
    for value in ("+33612345678", "Jeanne", "Martin"):
        assert value not in logs


async def test_wrong_secret_is_rejected_by_the_receiver(
    dispatch: DispatchApi, receiver: Receiver
) -> None:
    await dispatch.site()
    await _seller_with_hook(dispatch, receiver, "bob")
    receiver.secrets["bob"] = "whsec_" + "A" * 43 + "="  # not the seller's secret
    await dispatch.qualify()
    async with httpx.AsyncClient() as client:
        await dispatch.sender(client).send_due()
    assert receiver.rejected == 1
    [delivery] = await _deliveries(dispatch)
    assert delivery["status"] == "pending"
    assert delivery["last_status_code"] == 400


async def test_retries_follow_the_schedule_with_the_same_webhook_id(
    dispatch: DispatchApi, receiver: Receiver, clock: Clock
) -> None:
    await dispatch.site()
    await _seller_with_hook(dispatch, receiver, "carol")
    receiver.script("carol", 500, 502)
    await dispatch.qualify()
    async with httpx.AsyncClient() as client:
        sender = dispatch.sender(client)
        assert await sender.send_due() == 1  # attempt 1: 500
        assert await sender.send_due() == 0  # next in 5 s
        clock.advance(seconds=5)
        assert await sender.send_due() == 1  # attempt 2: 502
        clock.advance(seconds=299)
        assert await sender.send_due() == 0  # next in 5 min
        clock.advance(seconds=1)
        assert await sender.send_due() == 1  # attempt 3: delivered
    ids = {message.webhook_id for message in receiver.of("carol")}
    assert len(receiver.of("carol")) == 3
    assert len(ids) == 1
    [delivery] = await _deliveries(dispatch)
    assert delivery["status"] == "delivered"
    assert delivery["attempts"] == 3


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_is_honoured(
    dispatch: DispatchApi, receiver: Receiver, clock: Clock, status: int
) -> None:
    await dispatch.site()
    await _seller_with_hook(dispatch, receiver, "dave")
    receiver.script("dave", (status, {"Retry-After": "120"}))
    await dispatch.qualify()
    async with httpx.AsyncClient() as client:
        sender = dispatch.sender(client)
        await sender.send_due()
        [delivery] = await _deliveries(dispatch)
        assert delivery["last_outcome"] == "throttled"
        assert datetime.fromisoformat(delivery["next_attempt_at"]) == clock.now + timedelta(
            seconds=120
        )
        clock.advance(seconds=60)
        assert await sender.send_due() == 0  # the schedule's 5 s is not used
        clock.advance(seconds=60)
        assert await sender.send_due() == 1
    assert (await _deliveries(dispatch))[0]["status"] == "delivered"


def test_retry_after_parsing() -> None:
    now = datetime(2026, 11, 24, 10, 0, tzinfo=datetime.now().astimezone().tzinfo)
    assert parse_retry_after("30", now) == 30
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("soon", now) is None
    http_date = "Tue, 24 Nov 2026 09:01:00 GMT"
    from datetime import UTC

    assert parse_retry_after(http_date, datetime(2026, 11, 24, 9, 0, tzinfo=UTC)) == 60


async def test_410_gone_disables_the_endpoint_with_an_alert(
    dispatch: DispatchApi, receiver: Receiver
) -> None:
    await dispatch.site()
    seller = await _seller_with_hook(dispatch, receiver, "erin")
    receiver.script("erin", 410)
    await dispatch.qualify()
    async with httpx.AsyncClient() as client:
        await dispatch.sender(client).send_due()
    state = (await dispatch.admin.get(f"/v1/sellers/{seller['id']}")).json()
    assert state["webhook_disabled_reason"] == "gone"
    assert await dispatch.count(ManagerAlert, ManagerAlert.seller_id == seller["id"]) == 1
    [event] = await dispatch.events("seller.webhook-disabled.v1")
    assert event["data"]["reason"] == "gone"
    # Nothing more is sent to a disabled endpoint: a new message is held (the seller's feed
    # shows it) and never attempted; replay is refused until re-enabled.
    await dispatch.qualify()
    [delivery] = await _deliveries(dispatch, status="failed")
    [held] = await _deliveries(dispatch, status="held")
    assert (held["attempts"], held["last_outcome"]) == (0, "endpoint_disabled")
    async with httpx.AsyncClient() as client:
        assert await dispatch.sender(client).send_due() == 0
    assert len(receiver.of("erin")) == 1
    replay = await dispatch.admin.post(f"/v1/webhook-deliveries/{delivery['id']}/replay")
    assert replay.status_code == 409
    enabled = await dispatch.admin.post(f"/v1/sellers/{seller['id']}/webhook/enable")
    assert enabled.status_code == 200
    replay = await dispatch.admin.post(f"/v1/webhook-deliveries/{delivery['id']}/replay")
    assert replay.status_code == 200
    async with httpx.AsyncClient() as client:
        assert await dispatch.sender(client).send_due() == 1
    assert [d["id"] for d in await _deliveries(dispatch, status="delivered")] == [delivery["id"]]
    # The held message is sent by a recovery once the endpoint is back.
    recover = await dispatch.admin.post(
        f"/v1/sellers/{seller['id']}/webhook/recover", json={"since": held["created_at"]}
    )
    assert recover.json()["replayed"] == 1
    async with httpx.AsyncClient() as client:
        assert await dispatch.sender(client).send_due() == 1
    assert {d["status"] for d in await _deliveries(dispatch)} == {"delivered"}
    assert [m.webhook_id for m in receiver.of("erin")][-1] == held["id"]


async def test_repeated_failures_auto_disable_then_recover_replays_failures(
    dispatch: DispatchApi, receiver: Receiver, clock: Clock
) -> None:
    await dispatch.site()
    seller = await _seller_with_hook(dispatch, receiver, "frank")
    receiver.script("frank", 500, 500, 500)  # threshold is 3 in the fixture
    since = clock.now
    await dispatch.qualify()
    async with httpx.AsyncClient() as client:
        sender = dispatch.sender(client)
        for _ in range(3):
            await sender.send_due()
            clock.advance(minutes=10)
    state = (await dispatch.admin.get(f"/v1/sellers/{seller['id']}")).json()
    assert state["webhook_disabled_reason"] == "too_many_failures"
    assert await dispatch.count(ManagerAlert) == 1
    [delivery] = await _deliveries(dispatch)
    assert delivery["status"] == "failed"
    assert (
        len((await dispatch.admin.get(f"/v1/webhook-deliveries/{delivery['id']}/attempts")).json())
        == 3
    )
    await dispatch.admin.post(f"/v1/sellers/{seller['id']}/webhook/enable")
    recover = await dispatch.admin.post(
        f"/v1/sellers/{seller['id']}/webhook/recover", json={"since": since.isoformat()}
    )
    assert recover.json() == {"seller_id": seller["id"], "replayed": 1}
    async with httpx.AsyncClient() as client:
        assert await dispatch.sender(client).send_due() == 1
    assert await dispatch.count(WebhookDelivery, WebhookDelivery.status == "delivered") == 1


async def test_unreachable_endpoint_is_retried(
    dispatch: DispatchApi, receiver: Receiver, clock: Clock
) -> None:
    await dispatch.site()
    seller = await dispatch.seller("gina", webhook_url="http://127.0.0.1:9/hook")
    await dispatch.qualify()
    async with httpx.AsyncClient() as client:
        await dispatch.sender(client).send_due()
    [delivery] = await _deliveries(dispatch, seller_id=seller["id"])
    assert delivery["status"] == "pending"
    assert delivery["last_outcome"] == "network_error"


async def test_withdrawn_and_escalated_webhooks(
    dispatch: DispatchApi, receiver: Receiver, clock: Clock
) -> None:
    await dispatch.site()
    manager = await _seller_with_hook(dispatch, receiver, "manager")
    await dispatch.admin.patch(
        f"/v1/sellers/{manager['id']}", json={"shifts": "mon-fri 06:00-07:00"}
    )
    body = {
        "id": "lyon",
        "name": "Store lyon",
        "postcode": "69003",
        "opening_hours": "mon-fri 09:00-12:30,14:00-19:00; sat 09:00-12:00",
        "manager_seller_id": manager["id"],
    }
    assert (await dispatch.admin.put("/v1/sites/lyon", json=body)).status_code == 200
    await _seller_with_hook(dispatch, receiver, "henri")
    await dispatch.qualify()
    clock.advance(minutes=11)
    assert await dispatch.timers.fire_due() == 1  # expired → nobody else → escalated
    async with httpx.AsyncClient() as client:
        await dispatch.sender(client).send_due()
    assert [m.event_type for m in receiver.of("henri")] == [
        "assignment.offered",
        "assignment.withdrawn",
    ]
    [escalated] = receiver.of("manager")
    assert escalated.event_type == "lead.escalated"
    assert escalated.payload["data"]["reason"] == "no_seller_available"
    assert receiver.rejected == 0


async def test_a_delivered_pass_is_recorded_in_the_same_statements_whatever_its_size(
    dispatch: DispatchApi, receiver: Receiver, clock: Clock
) -> None:
    await _delivered_passes(dispatch, receiver, clock)


@pytest.mark.postgres
async def test_a_delivered_pass_is_recorded_in_the_same_statements_on_postgresql(
    postgres_url: str, receiver: Receiver, clock: Clock
) -> None:
    settings = dispatch_settings(postgres_url.replace("postgresql://", "postgresql+asyncpg://"))
    async with start_dispatch(settings, clock) as dispatch:
        await _delivered_passes(dispatch, receiver, clock)


async def _delivered_passes(dispatch: DispatchApi, receiver: Receiver, clock: Clock) -> None:
    """A pass of two delivered messages (one of them a retry), then one of three: the same
    statements (a pass is recorded in one on PostgreSQL, three on SQLite, whatever its size),
    the failure count reset."""
    await dispatch.site()
    seller = await _seller_with_hook(dispatch, receiver, "ivy")
    receiver.script("ivy", 500)  # the first attempt fails: one failure counted
    await dispatch.qualify()
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    async with httpx.AsyncClient() as client:
        sender = dispatch.sender(client)
        await sender.send_due()
        assert (await dispatch.admin.get(f"/v1/sellers/{seller['id']}")).json()[
            "webhook_failures"
        ] == 1
        clock.advance(minutes=10)  # the retry is due
        await dispatch.qualify()
        engine = dispatch.runtime.engine.sync_engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert await sender.send_due() == 2  # the retry and the new offer
            two = len(statements)
            statements.clear()
            for _ in range(3):
                await dispatch.qualify()
            statements.clear()
            assert await sender.send_due() == 3
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == two, statements
    # Success resets the seller's failure count; the retried message's attempts are numbered.
    state = (await dispatch.admin.get(f"/v1/sellers/{seller['id']}")).json()
    assert state["webhook_failures"] == 0
    deliveries = await _deliveries(dispatch, seller_id=seller["id"])
    assert {d["status"] for d in deliveries} == {"delivered"}
    retried = next(d for d in deliveries if d["attempts"] == 2)
    attempts = (await dispatch.admin.get(f"/v1/webhook-deliveries/{retried['id']}/attempts")).json()
    assert [(a["attempt"], a["status_code"], a["outcome"]) for a in attempts] == [
        (1, 500, "http_error"),
        (2, 204, "delivered"),
    ]
    assert len(receiver.of("ivy")) == 6
