"""The contact schedule after an attempt (retry ladder in business minutes, moved into the legal
calling window and the call limit) and "overdue" as one computation everywhere."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from qualify.models import QueuedLead
from shared.db.session import session_scope
from tests.qualify.conftest import QualifyApi, open_api, paris_now, qualify_settings
from tests.qualify.test_api import QUALIFICATION, claimed, queue_ids
from tests.support.clock import TUESDAY_11H, Clock


@pytest.fixture
async def api5(tmp_path: Path, clock: Clock) -> AsyncIterator[QualifyApi]:
    """Qualify with the default unanswered limit (5) and retry ladder (30, 120, 540)."""
    settings = qualify_settings(f"sqlite+aiosqlite:///{tmp_path / 'qualify.db'}", tmp_path)
    async with open_api(settings, clock) as api:
        yield api


async def attempt(
    client: httpx.AsyncClient, lead: str, outcome: str, channel: str = "phone"
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/leads/{lead}/attempts", json={"channel": channel, "outcome": outcome}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def lead_out(client: httpx.AsyncClient, lead: str) -> dict[str, Any]:
    response = await client.get(f"/v1/leads/{lead}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_unanswered_attempts_follow_the_retry_ladder(api5: QualifyApi) -> None:
    api = api5
    lead = await api.add_lead(received_at=TUESDAY_11H - timedelta(minutes=10))
    alice = await claimed(api, "alice", lead)
    await attempt(alice, lead, "no_answer")  # Tuesday 11:00
    await alice.delete(f"/v1/leads/{lead}/claim")
    out = await lead_out(alice, lead)
    assert (out["due_at"], out["available_at"]) == ("2026-11-24T10:30:00Z",) * 2  # +30 min
    assert out["overdue"] is False
    # The unanswered lead no longer keeps the head of the queue: a newer lead is served first.
    newer = await api.add_lead(received_at=TUESDAY_11H, phone="+33698765432")
    assert await queue_ids(alice) == [newer]
    api.clock.now = paris_now(2026, 11, 24, 11, 30)
    assert await queue_ids(alice) == [newer, lead]

    await claimed(api, "alice", lead)
    await attempt(alice, lead, "no_answer")  # 11:30, + 2 business hours (lunch 12:30-13:30)
    assert (await lead_out(alice, lead))["due_at"] == "2026-11-24T13:30:00Z"
    api.clock.now = paris_now(2026, 11, 24, 14, 30)
    await claimed(api, "alice", lead)
    await attempt(alice, lead, "voicemail")  # then one call-centre day (540 business minutes)
    assert (await lead_out(alice, lead))["due_at"] == "2026-11-25T13:30:00Z"
    api.clock.now = paris_now(2026, 11, 25, 14, 30)
    await claimed(api, "alice", lead)
    # The last step repeats, but that was the 4th call in 30 days: the next one waits until the
    # first leaves the rolling period (Tuesday 24 December, 11:00).
    await attempt(alice, lead, "no_answer")
    assert (await lead_out(alice, lead))["due_at"] == "2026-12-24T10:00:00Z"


async def test_the_next_call_is_moved_into_the_legal_window(api5: QualifyApi) -> None:
    api = api5
    api.clock.now = paris_now(2026, 11, 24, 18, 50)
    by_phone = await api.add_lead(received_at=api.clock.now)
    by_mail = await api.add_lead(received_at=api.clock.now, phone=None)
    wrong = await api.add_lead(received_at=api.clock.now, phone="+33698765432")
    alice = await claimed(api, "alice", by_phone)
    await claimed(api, "alice", by_mail)
    await claimed(api, "alice", wrong)
    await attempt(alice, by_phone, "no_answer")
    await attempt(alice, by_mail, "no_answer", channel="email")
    await attempt(alice, wrong, "wrong_number")
    # 30 business minutes after 18:50 is Wednesday 09:20; calls start at 10:00.
    assert (await lead_out(alice, by_phone))["due_at"] == "2026-11-25T09:00:00Z"
    assert (await lead_out(alice, by_mail))["due_at"] == "2026-11-25T08:20:00Z"
    # A wrong number: the follow-up rule (540 business minutes), no calling window.
    assert (await lead_out(alice, wrong))["due_at"] == "2026-11-25T17:50:00Z"


async def test_a_reached_prospect_is_followed_up_a_day_later(api5: QualifyApi) -> None:
    lead = await api5.add_lead()
    alice = await claimed(api5, "alice", lead)
    await attempt(alice, lead, "reached")
    out = await lead_out(alice, lead)
    assert out["due_at"] == "2026-11-25T10:00:00Z"  # Wednesday 11:00
    assert out["status"] == "contacting"


# -- overdue: one computation ---------------------------------------------------------------


async def overdue_everywhere(
    api: QualifyApi, client: httpx.AsyncClient, leads: dict[str, str]
) -> dict[str, bool]:
    """Per state name, the lead's ``overdue`` as GET lead, the queue's item, the queue's filter,
    the database's predicate and the holder's figures say it at the same instant (all equal)."""
    now = api.clock.now
    queue = {
        item["lead_id"]: item["overdue"]
        for item in (await client.get("/v1/queue", params={"limit": 200})).json()["items"]
    }
    filtered = set(await queue_ids(client, overdue="true", limit=200))
    not_overdue = set(await queue_ids(client, overdue="false", limit=200))
    async with session_scope(api.runtime.session_factory) as session:
        in_sql = set(
            (
                await session.scalars(select(QueuedLead.lead_id).where(QueuedLead.is_overdue(now)))
            ).all()
        )
    boss = await api.client("boss", roles=("manager",))
    answers: dict[str, bool] = {}
    for name, lead in leads.items():
        out = await lead_out(boss, lead)
        views = {out["overdue"], lead in in_sql}
        if lead in queue:
            views |= {queue[lead], lead in filtered}
            assert (lead in filtered) != (lead in not_overdue)
        if out["claim"] is not None:
            holder = next(n for n, token in api.ids.items() if token == out["claim"]["operator_id"])
            stats = (await (await api.client(holder)).get("/v1/operators/me/stats")).json()
            views.add(stats["overdue_claimed_now"] > 0)
        assert len(views) == 1, (name, views)
        answers[name] = views.pop()
    return answers


async def test_overdue_is_one_computation(api: QualifyApi) -> None:
    alice = await api.client("alice")
    leads = {
        "waiting, not due": await api.add_lead(received_at=TUESDAY_11H, phone="+33600000001"),
        "waiting, past due": await api.add_lead(
            received_at=TUESDAY_11H - timedelta(minutes=30), phone="+33600000002"
        ),
        "call-back": await api.add_lead(phone="+33600000003"),
        "after an attempt": await api.add_lead(
            received_at=TUESDAY_11H - timedelta(minutes=30), phone="+33600000004"
        ),
        "held, past due": await api.add_lead(
            received_at=TUESDAY_11H - timedelta(minutes=40), phone="+33600000005"
        ),
        "qualified": await api.add_lead(
            received_at=TUESDAY_11H - timedelta(minutes=40), phone="+33600000006"
        ),
    }
    await claimed(api, "alice", leads["call-back"])
    response = await alice.put(
        f"/v1/leads/{leads['call-back']}/callback", json={"at": "2026-11-24T11:45:00"}
    )
    assert response.status_code == 200, response.text
    await claimed(api, "alice", leads["after an attempt"])
    await attempt(alice, leads["after an attempt"], "no_answer")  # next try 11:30
    await alice.delete(f"/v1/leads/{leads['after an attempt']}/claim")
    await claimed(api, "alice", leads["qualified"])
    await alice.post(f"/v1/leads/{leads['qualified']}/qualification", json=QUALIFICATION)
    await claimed(api, "bob", leads["held, past due"])

    assert await overdue_everywhere(api, alice, leads) == {
        "waiting, not due": False,
        "waiting, past due": True,
        "call-back": False,
        "after an attempt": False,
        "held, past due": True,
        "qualified": False,
    }
    api.clock.now = paris_now(2026, 11, 24, 11, 50)  # past the call-back, the retry, every due
    assert await overdue_everywhere(api, alice, leads) == {
        "waiting, not due": True,
        "waiting, past due": True,
        "call-back": True,
        "after an attempt": True,
        "held, past due": True,
        "qualified": False,
    }
