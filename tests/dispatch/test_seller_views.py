"""A seller's own views (their token): the open offers and assignments with their deadlines, and
the feed of every message written for their tool since a cursor, so a tool that missed webhooks
(down, disabled, or none at all) catches up. Never another seller's data."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx

from dispatch.privacy.handlers import dispatch_eraser
from shared.db.session import session_scope
from shared.events import Envelope
from shared.events.privacy import ErasureRequestedV1
from shared.privacy import ERASURE_REQUESTED, erasure_handler
from tests.dispatch.conftest import DispatchApi, Receiver
from tests.support.clock import Clock

PROBLEM = "application/problem+json"
SETTLE = timedelta(seconds=6)  # beyond DISPATCH_SELLER_FEED_SETTLE_S (5 s)


async def _feed(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/sellers/me/events", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _read_all(client: httpx.AsyncClient, limit: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await _feed(client, limit=limit, **({"after": cursor} if cursor else {}))
        events += page["events"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return events


async def test_a_seller_lists_their_open_assignments_with_deadlines(
    dispatch: DispatchApi, clock: Clock
) -> None:
    await dispatch.site()
    ana = (await dispatch.seller("Ana"))["id"]
    client = await dispatch.seller_client(ana)
    offered, accepted, contacted, sold = [await dispatch.qualify() for _ in range(4)]
    ids = {lead: (await dispatch.assignments(lead))[0]["id"] for lead in (offered, accepted)}
    ids |= {lead: (await dispatch.assignments(lead))[0]["id"] for lead in (contacted, sold)}
    for lead in (accepted, contacted, sold):
        await client.post(f"/v1/assignments/{ids[lead]}/accept")
    for lead in (contacted, sold):
        await client.post(f"/v1/assignments/{ids[lead]}/contacted", json={"channel": "sms"})
    await client.post(f"/v1/assignments/{ids[sold]}/sold")
    bob = (await dispatch.seller("Bob"))["id"]
    bobs = await dispatch.qualify()  # to Bob, the least loaded

    response = await client.get("/v1/sellers/me/assignments")

    assert response.status_code == 200, response.text
    mine = {item["lead_id"]: item for item in response.json()}
    assert set(mine) == {offered, accepted, contacted}  # open ones only, never Bob's
    assert bobs not in mine
    assert mine[offered]["status"] == "offered"
    assert mine[offered]["deadlines"]["accept_by"] == mine[offered]["accept_due_at"]
    assert mine[accepted]["deadlines"]["first_contact_by"] == mine[accepted]["first_contact_due_at"]
    assert mine[accepted]["deadlines"]["accept_by"] is None
    next_followup = datetime.fromisoformat(mine[contacted]["deadlines"]["next_followup_at"])
    assert next_followup == clock.now + timedelta(days=1)  # J+1, in the legal window
    for item in mine.values():
        assert item["seller_id"] == ana
        assert item["lead"]["lead_id"] == item["lead_id"]
        assert item["lead"]["contact"]["phone"] == "+33612345678"  # theirs to call
        assert item["callbacks"]["accept"].endswith(f"/v1/assignments/{item['id']}/accept")
    bob_view = (await (await dispatch.seller_client(bob)).get("/v1/sellers/me/assignments")).json()
    assert [item["lead_id"] for item in bob_view] == [bobs]


async def test_only_a_sellers_token_has_a_me(dispatch: DispatchApi) -> None:
    await dispatch.site()
    manager = await dispatch.client_for_roles("manager")
    for path in ("/v1/sellers/me/assignments", "/v1/sellers/me/events"):
        # The admin's (development) token holds the seller role but is no seller.
        for client, status in (
            (dispatch.admin, 403),
            (manager, 403),
            (dispatch.client_with(""), 401),
        ):
            response = await client.get(path)
            assert response.status_code == status, path
            assert response.headers["content-type"] == PROBLEM
    paths = (await dispatch.admin.get("/openapi.json")).json()["paths"]
    assert {"200", "401", "403", "422"} <= set(paths["/v1/sellers/me/events"]["get"]["responses"])


async def test_the_feed_replays_what_the_webhooks_carried_from_a_cursor(
    dispatch: DispatchApi, receiver: Receiver, clock: Clock
) -> None:
    await dispatch.site()
    ana = await dispatch.seller("Ana", webhook_url=receiver.url("ana"), capacity=20)
    receiver.secrets["ana"] = ana["webhook_secret"]
    client = await dispatch.seller_client(ana["id"])
    leads = []
    for _ in range(5):
        leads.append(await dispatch.qualify())
        clock.advance(seconds=1)
    await dispatch.deliver()
    assert len(receiver.of("ana")) == 5

    # Written just now: not served before they settle (a cursor never skips a late commit).
    assert (await _feed(client))["events"] != []
    fresh = await dispatch.qualify()
    page = await _feed(client, limit=50)
    assert fresh not in {event["lead_id"] for event in page["events"]}
    clock.advance(seconds=SETTLE.total_seconds())

    events = await _read_all(client, limit=2)

    assert [event["lead_id"] for event in events] == [*leads, fresh]
    assert {event["type"] for event in events} == {"assignment.offered"}
    # The webhooks went concurrently: they may have arrived in any order.
    carried = {message.webhook_id: message for message in receiver.of("ana")}
    assert sorted(event["id"] for event in events[:5]) == sorted(carried)
    # The same data as the signed webhook, byte for byte in meaning.
    assert events[0]["data"] == carried[events[0]["id"]].payload["data"]
    assert [event["delivery"] for event in events] == ["delivered"] * 5 + ["pending"]
    # From the last cursor: nothing new; then a withdrawal appears, and only it.
    cursor = events[-1]["cursor"]
    assert (await _feed(client, after=cursor))["events"] == []
    assert (await _feed(client, after=cursor))["next_cursor"] == cursor
    manager = await dispatch.client_for_roles("manager")
    moved = await manager.post(f"/v1/assignments/{events[0]['data']['assignment']['id']}/reassign")
    assert moved.status_code == 422  # a body is required…
    moved = await manager.post(
        f"/v1/assignments/{events[0]['data']['assignment']['id']}/reassign", json={}
    )
    assert moved.status_code == 200
    clock.advance(seconds=SETTLE.total_seconds())
    [withdrawn] = (await _feed(client, after=cursor))["events"]
    assert withdrawn["type"] == "assignment.withdrawn"
    assert withdrawn["data"]["reason"] == "reassigned"
    # A cursor that is not ours is a 422 problem naming the parameter.
    for bad in ("nope", "bm9wZQ", "MjAyNi0xMS0yNFQxMDowMDowMHw"):
        response = await client.get("/v1/sellers/me/events", params={"after": bad})
        assert response.status_code == 422, bad
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["errors"][0]["field"] == "after"


async def test_a_seller_without_a_working_endpoint_reads_held_messages(
    dispatch: DispatchApi, clock: Clock
) -> None:
    await dispatch.site()
    ana = await dispatch.seller("Ana")  # no webhook URL: a tool that only reads the feed
    lead = await dispatch.qualify()  # to Ana, the only seller yet
    bob = await dispatch.seller("Bob")
    other = await dispatch.qualify()  # to Bob, the least loaded
    clock.advance(seconds=SETTLE.total_seconds())
    ana_client = await dispatch.seller_client(ana["id"])

    [message] = (await _feed(ana_client))["events"]

    assert (message["type"], message["lead_id"], message["delivery"]) == (
        "assignment.offered",
        lead,
        "held",
    )
    assert message["data"]["lead"]["contact"]["phone"] == "+33612345678"
    bob_feed = (await _feed(await dispatch.seller_client(bob["id"])))["events"]
    assert [event["lead_id"] for event in bob_feed] == [other]  # never Ana's
    # Nothing is ever sent for a held message; the delivery log shows why.
    assert await dispatch.deliver() == 0
    log = (await dispatch.admin.get("/v1/webhook-deliveries", params={"status": "held"})).json()
    assert {item["last_outcome"] for item in log} == {"no_endpoint"}

    # After an erasure, the feed keeps only the instruction to forget the lead.
    handler = erasure_handler(
        service="dispatch",
        outbox=dispatch.runtime.infra.outbox_event,
        erased_subjects=dispatch.runtime.infra.erased_subject,
        erase=dispatch_eraser(lambda: dispatch.clock.now),
    )
    request = ErasureRequestedV1(
        request_id=str(uuid.uuid4()),
        client_id="client-1",
        lead_ids=[lead],
        requested_at=clock.now,
    )
    envelope = Envelope(
        source="/vo-leads/crm",
        type=ERASURE_REQUESTED,
        subject="client-1",
        data=request.model_dump(mode="json"),
    )
    async with session_scope(dispatch.runtime.session_factory) as session:
        await handler(session, envelope)
    clock.advance(seconds=SETTLE.total_seconds())
    [erased] = (await _feed(ana_client))["events"]
    assert (erased["type"], erased["lead_id"]) == ("lead.erased", lead)
    assert "+3361" not in str(erased)
