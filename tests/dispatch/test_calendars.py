"""Dispatch publishes the calendars it enforces (``site.calendar-changed.v1`` on
``vo.directory``, key = site id or ``full_web``): when a site is created or its calendar changes,
and all of them when the worker starts or an admin asks, so crm can be built from the events
alone. Whole calendars, no personal data."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from dispatch.models import infra
from shared.events import Topics
from shared.events.catalogue import spec_for
from tests.dispatch.conftest import DispatchApi, dispatch_settings, start_dispatch
from tests.support.clock import Clock
from tests.support.harness import eventually, run_worker

CHANGED = "site.calendar-changed.v1"


async def _outbox_rows(dispatch: DispatchApi) -> list[dict[str, Any]]:
    table = infra.outbox_event
    async with dispatch.runtime.session_factory() as session:
        rows = (
            await session.execute(
                select(table.c.topic, table.c.subject, table.c.value)
                .where(table.c.event_type == CHANGED)
                .order_by(table.c.id)
            )
        ).all()
    return [{"topic": r.topic, "subject": r.subject, "data": json.loads(r.value)} for r in rows]


async def test_a_site_calendar_is_published_when_created_and_when_it_changes(
    dispatch: DispatchApi, clock: Clock
) -> None:
    site = await dispatch.site(
        "strasbourg",
        postcode="67000",
        opening_hours="mon-sat 00:00-24:00",
        holiday_subdivision="6AE",
        closures=["2026-12-26", "2026-12-24"],
    )
    [created] = await _outbox_rows(dispatch)
    assert (created["topic"], created["subject"]) == (Topics.DIRECTORY, "strasbourg")
    assert created["data"] == {
        "calendar_id": "strasbourg",
        "site_id": "strasbourg",
        "pool": "in_store",
        "timezone": "Europe/Paris",
        "opening_hours": "mon-sat 00:00-24:00",
        "holiday_subdivision": "6AE",
        "observe_holidays": True,
        "closures": ["2026-12-24", "2026-12-26"],
        "change": "created",
        "changed_at": created["data"]["changed_at"],
    }
    assert datetime.fromisoformat(created["data"]["changed_at"]) == clock.now.astimezone(UTC)
    assert spec_for(CHANGED).personal_data is False

    body = {key: site[key] for key in ("id", "name", "postcode", "opening_hours", "closures")}
    body["holiday_subdivision"] = "6AE"
    # A change that leaves the calendar as it was publishes nothing.
    renamed = await dispatch.admin.put("/v1/sites/strasbourg", json=body | {"name": "Neudorf"})
    assert renamed.status_code == 200
    same_days = body | {"closures": ["2026-12-26", "2026-12-24"]}
    assert (await dispatch.admin.put("/v1/sites/strasbourg", json=same_days)).status_code == 200
    assert len(await _outbox_rows(dispatch)) == 1
    # New hours: the whole calendar again.
    clock.advance(hours=1)
    hours = body | {"opening_hours": "mon-fri 08:00-20:00"}
    assert (await dispatch.admin.put("/v1/sites/strasbourg", json=hours)).status_code == 200
    updated = (await _outbox_rows(dispatch))[-1]["data"]
    assert (updated["change"], updated["opening_hours"]) == ("updated", "mon-fri 08:00-20:00")
    assert updated["closures"] == ["2026-12-24", "2026-12-26"]


async def test_every_calendar_is_published_again_on_request(dispatch: DispatchApi) -> None:
    await dispatch.site()
    await dispatch.site("vienne", postcode="38200")
    manager = await dispatch.client_for_roles("manager")
    assert (await manager.post("/v1/calendars/republish")).status_code == 403

    response = await dispatch.admin.post("/v1/calendars/republish")

    assert response.status_code == 200
    assert response.json() == {"published": 3}
    republished = [
        row for row in await _outbox_rows(dispatch) if row["data"]["change"] == "republished"
    ]
    assert [row["subject"] for row in republished] == ["lyon", "vienne", "full_web"]
    pool = republished[-1]["data"]
    assert (pool["calendar_id"], pool["site_id"], pool["pool"]) == ("full_web", None, "full_web")
    assert pool["opening_hours"] == dispatch.settings.full_web_hours


async def test_the_worker_publishes_every_calendar_when_it_starts(tmp_path: Path) -> None:
    settings = dispatch_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'dispatch.db'}",
        embedded_bus_path=tmp_path / "bus.db",
        full_web_hours="mon-sun 08:00-22:00",
    )
    async with start_dispatch(settings, Clock(datetime.now(UTC))) as api:
        await api.site()
        async with run_worker(settings):

            async def published() -> list[dict[str, Any]]:
                with sqlite3.connect(tmp_path / "bus.db") as connection:
                    rows = connection.execute(
                        "SELECT key, value FROM bus_message WHERE topic = ?", (Topics.DIRECTORY,)
                    ).fetchall()
                values = [json.loads(value) | {"key": key.decode()} for key, value in rows]
                return [value for value in values if value["change"] == "republished"]

            events = await eventually(published, timeout_s=20)
    assert {event["key"] for event in events} == {"lyon", "full_web"}
    [pool] = [event for event in events if event["key"] == "full_web"]
    assert pool["opening_hours"] == "mon-sun 08:00-22:00"
