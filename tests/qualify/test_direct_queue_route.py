"""The operators' polls of the queue, ``GET /v1/queue``, are answered by the request middleware
(``shared.direct``), never by FastAPI's route; and the direct answers are the FastAPI route's,
byte for byte, for pages, good and hostile query strings and refused callers alike: each request
below is sent twice, once with the direct routes switched off."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel
from pydantic_core import to_json

from qualify.app import create_app
from qualify.deps import OPERATE
from qualify.models import CALLBACK_RANK, QueuedLead
from qualify.queue.router import list_queue_directly
from qualify.queue.schemas import QueueItem, QueueQuery
from shared.db.session import session_scope
from shared.direct import DirectRoute, DirectRoutes
from tests.qualify.conftest import QualifyApi, open_api, qualify_settings
from tests.qualify.test_direct_operator_routes import Routing, both, switch_direct_routes
from tests.support.clock import Clock

POLL = "GET /v1/queue"


@pytest.fixture
def routing(monkeypatch: pytest.MonkeyPatch) -> Routing:
    return switch_direct_routes(monkeypatch)


@pytest.fixture
async def api(database_url: str, tmp_path: Path, clock: Clock) -> AsyncIterator[QualifyApi]:
    async with open_api(qualify_settings(database_url, tmp_path), clock) as api:
        yield api


def identical(direct: httpx.Response, routed: httpx.Response) -> None:
    """The same answer: status, body bytes, and the headers but the per-request ones."""
    assert (direct.status_code, direct.content) == (routed.status_code, routed.content)

    def kept(response: httpx.Response) -> list[tuple[str, str]]:
        varying = {"traceparent", "x-request-id"}
        return sorted((k, v) for k, v in response.headers.items() if k not in varying)

    assert kept(direct) == kept(routed)


async def _varied_queue(api: QualifyApi) -> list[str]:
    """Leads that show every kind of value a page holds: nulls, microseconds, a call-back
    (rank 0), overdue or not, a site, unread replies, a non-ASCII name."""
    now = api.clock.now
    leads = [
        await api.add_lead(received_at=now - timedelta(minutes=90, microseconds=250)),
        await api.add_lead(source="facebook", phone=None, ad_ref=None),
        await api.add_lead(email=None, kind="message", received_at=now - timedelta(seconds=1)),
        await api.add_lead(source="email", received_at=now - timedelta(days=2)),
    ]
    async with session_scope(api.runtime.session_factory) as session:
        called = await session.get_one(QueuedLead, leads[3])
        called.queue_rank = CALLBACK_RANK
        called.callback_at = now - timedelta(minutes=5, microseconds=7)
        called.site = "LYON-01"
        called.full_name = "Zoé «Ångström» 東京"
        called.unread_replies = 2
        called.attempt_count = 3
    return leads


async def test_polls_are_answered_directly(api: QualifyApi, routing: Routing) -> None:
    lead = await api.add_lead()
    alice = await api.client("alice")
    page = await alice.get("/v1/queue")
    assert page.status_code == 200, page.text
    assert [item["lead_id"] for item in page.json()["items"]] == [lead]
    assert routing.answered == [POLL]
    # Another method of the path, and the claim of the next lead, go to FastAPI.
    await alice.head("/v1/queue")
    assert (await alice.post("/v1/queue/claim")).status_code == 200
    assert routing.answered == [POLL]
    assert 'route="/v1/queue"' in (await api.base.get("/metrics")).text


async def test_pages_answer_as_the_fastapi_route_byte_for_byte(
    api: QualifyApi, routing: Routing
) -> None:
    leads = await _varied_queue(api)
    alice = await api.client("alice")
    direct, routed = await both(routing, alice, "/v1/queue", "GET")
    identical(direct, routed)
    items = direct.json()["items"]
    assert sorted(item["lead_id"] for item in items) == sorted(leads)
    assert items[0]["lead_id"] == leads[3]  # the call-back first
    assert list(items[0]) == list(QueueItem.model_fields)  # the model's order
    assert items[0]["full_name"] == "Zoé «Ångström» 東京"
    assert {item["overdue"] for item in items} == {True, False}
    # Every page of a walk by cursor, and filtered pages (the same cursors both ways).
    cursor: str | None = ""
    pages = 0
    while cursor is not None:
        direct, routed = await both(
            routing, alice, "/v1/queue", "GET", params={"limit": 1, "cursor": cursor}
        )
        identical(direct, routed)
        cursor = direct.json()["next_cursor"]
        pages += 1
    assert pages == len(leads)
    for params in (
        {"source": "facebook"},
        {"overdue": "true"},
        {"overdue": "false", "status": "waiting"},
        {"site": "LYON-01", "limit": 200},
        {"site": "PARIS-02"},
    ):
        direct, routed = await both(routing, alice, "/v1/queue", "GET", params=params)
        identical(direct, routed)
        assert direct.status_code == 200


HOSTILE = [
    "limit=0",
    "limit=201",
    "limit=abc",
    "limit=",
    "limit=1.5",
    "limit=2.0",
    "limit=%2B5",
    "limit=%205",
    "limit=5_0",
    "limit=1e1",
    "limit=99999999999999999999999",
    "limit=1&limit=x",  # the last value counts
    "limit=x&limit=1",
    "source=nope",
    "source=",
    "source=LEBONCOIN",
    "source=leboncoin&source=facebook",
    "site=",
    "site=" + "x" * 65,
    "site=caf%C3%A9",
    "site=%C3",
    "status=qualified",
    "status=",
    "overdue=maybe",
    "overdue=",
    "overdue=YES",
    "overdue=0",
    "overdue=on",
    "cursor=",
    "cursor=garbage",
    "cursor=" + "x" * 201,
    "cursor=W10",
    "limit=0&source=nope&overdue=maybe&site=&cursor=" + "x" * 201,  # every error, in order
    "unknown=1&limit=2",
    "limit",
    "=&&=x&limit=3",
]


@pytest.mark.parametrize("query", HOSTILE)
async def test_query_strings_answer_as_the_fastapi_route(
    api: QualifyApi, routing: Routing, query: str
) -> None:
    await api.add_lead()
    alice = await api.client("alice")
    direct, routed = await both(routing, alice, f"/v1/queue?{query}", "GET")
    identical(direct, routed)
    if direct.status_code == 422:
        assert direct.headers["content-type"] == "application/problem+json"
        assert direct.json()["instance"] == "/v1/queue"


async def test_refused_callers_answer_as_the_fastapi_route(
    api: QualifyApi, routing: Routing
) -> None:
    await api.add_lead()
    seller = await api.client("nora", roles=("seller",))
    manager = await api.client("maud", roles=("manager",))
    statuses = []
    for client in (
        api.client_as(None),
        api.client_as("vo_unknown"),
        api.client_as(""),
        seller,
        manager,
        api.base,  # admin
    ):
        for query in ("", "?limit=0"):  # the caller is checked before the query string
            direct, routed = await both(routing, client, f"/v1/queue{query}", "GET")
            identical(direct, routed)
            statuses.append(direct.status_code)
    assert statuses == [401, 401, 401, 401, 401, 401, 403, 403, 200, 422, 200, 422]


def test_the_direct_poll_declares_the_fastapi_routes_query_parameters(tmp_path: Path) -> None:
    """Start-up refuses a direct route whose query model is not the FastAPI route's query
    parameters (name, type, constraints, default): both would not validate alike."""
    app = create_app(qualify_settings("sqlite+aiosqlite:///:memory:", tmp_path))
    DirectRoutes(
        [DirectRoute("GET", "/v1/queue", None, OPERATE, list_queue_directly, query=QueueQuery)]
    ).check(app)

    class Looser(QueueQuery):
        limit: int = 50

    class Fewer(BaseModel):
        limit: int = 50

    for query in (None, Looser, Fewer):
        routes = DirectRoutes(
            [DirectRoute("GET", "/v1/queue", None, OPERATE, list_queue_directly, query=query)]
        )
        with pytest.raises(ValueError, match="query"):
            routes.check(app)


def test_queue_items_encode_as_the_model_does() -> None:
    """The direct route encodes the rows without a ``QueueItem``; pydantic-core encodes the
    values a row holds as the model's fields do."""
    row = {
        "lead_id": "l-1",
        "status": "waiting",
        "kind": "enquiry",
        "source": "leboncoin",
        "site": None,
        "received_at": datetime(2026, 11, 24, 8, 30, 15, 250000, tzinfo=UTC),
        "due_at": datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
        "overdue": False,
        "callback_at": datetime(2026, 11, 24, 9, 0, 0, 1, tzinfo=UTC),
        "attempt_count": 0,
        "unread_replies": 0,
        "full_name": 'Zoé \u2028 "x" \\ \x7f',
        "phone": "+33612345678",
        "email": None,
        "ad_ref": "AD-1",
    }
    assert to_json(row) == QueueItem.model_validate(row).model_dump_json().encode()
