"""Direct routing: the policy per source and per site (recognised by the ad reference), managed
by admins; a direct lead is qualified by the machine at receipt and published with its path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.events.payloads import DIRECT_ROUTING_OPERATOR
from tests.qualify.conftest import QualifyApi, open_api, qualify_settings
from tests.qualify.test_api import QUALIFICATION, assert_problem, claimed, outbox, queue_ids
from tests.qualify.test_conversation import outgoing
from tests.support.clock import Clock


async def test_rules_are_managed_by_admins(api: QualifyApi) -> None:
    operator = await api.client("alice")
    boss = await api.client("boss", roles=("manager",))
    admin = await api.client("root", roles=("admin",))
    rule = {"path": "direct", "channel": "full_web"}
    assert_problem(await operator.put("/v1/routing/sources/leboncoin", json=rule), 403)
    assert_problem(await boss.put("/v1/routing/sources/leboncoin", json=rule), 403)
    assert_problem(await operator.get("/v1/routing"), 403)
    response = await admin.put("/v1/routing/sources/leboncoin", json=rule)
    assert response.status_code == 200, response.text
    assert response.json()["updated_by"] == api.ids["root"]
    site = {"path": "direct", "ad_ref_prefixes": ["LYO-", "lyon/"]}
    assert (await admin.put("/v1/routing/sites/lyon", json=site)).status_code == 200
    policy = (await boss.get("/v1/routing")).json()
    assert policy["default"] == {"path": "qualify", "channel": "in_store", "intent": "buy"}
    assert [(r["scope"], r["key"], r["path"]) for r in policy["rules"]] == [
        ("site", "lyon", "direct"),
        ("source", "leboncoin", "direct"),
    ]

    # Bad input is named; a prefix belongs to one site; deleting twice is a 404.
    bad = assert_problem(await admin.put("/v1/routing/sources/fax", json=rule), 422)
    assert bad["errors"][0]["field"] == "source"
    bad = assert_problem(
        await admin.put("/v1/routing/sources/email", json={"path": "sideways"}), 422
    )
    assert bad["errors"][0]["field"] == "path"
    bad = assert_problem(
        await admin.put("/v1/routing/sites/nice", json={"path": "direct", "ad_ref_prefixes": []}),
        422,
    )
    assert bad["errors"][0]["field"] == "ad_ref_prefixes"
    assert_problem(
        await admin.put("/v1/routing/sources/email", json={"path": "direct", "intent": "trade_in"}),
        422,
    )
    taken = assert_problem(
        await admin.put(
            "/v1/routing/sites/nice", json={"path": "direct", "ad_ref_prefixes": ["lyo-"]}
        ),
        409,
        "ad-ref-prefix-taken",
    )
    assert taken["site"] == "lyon"
    assert (await admin.delete("/v1/routing/sites/lyon")).status_code == 204
    assert_problem(await admin.delete("/v1/routing/sites/lyon"), 404, "routing-rule-not-found")


async def test_a_direct_lead_is_qualified_at_receipt(api: QualifyApi) -> None:
    admin = await api.client("root", roles=("admin",))
    await admin.put("/v1/routing/sources/facebook", json={"path": "direct"})
    direct = await api.add_lead(source="facebook", ad_ref="AD-9")
    again = await api.add_lead(source="facebook", lead_id=direct)  # a replay changes nothing
    assert again == direct
    operated = await api.add_lead(source="leboncoin")
    alice = await api.client("alice")
    assert await queue_ids(alice) == [operated]
    assert_problem(await alice.post(f"/v1/leads/{direct}/claim"), 409, "lead-closed")

    [(kind, event)] = await outbox(api, direct)
    assert kind == "lead.qualified.v1"
    assert event["path"] == "direct"
    assert event["operator_id"] == DIRECT_ROUTING_OPERATOR
    assert (event["intent"], event["channel"], event["site"]) == ("buy", "in_store", None)
    assert event["vehicle_ad_ref"] == "AD-9"
    assert event["consents"] == {}
    assert event["contact"]["phone"] == "+33612345678"
    boss = await api.client("boss", roles=("manager",))
    out = (await boss.get(f"/v1/leads/{direct}")).json()
    assert (out["status"], out["path"], out["overdue"]) == ("qualified", "direct", False)
    assert out["qualification"]["operator_id"] == DIRECT_ROUTING_OPERATOR
    assert out["qualification"]["qualification"]["site"] is None

    # An operator's qualification says its path too.
    await claimed(api, "alice", operated)
    await alice.post(f"/v1/leads/{operated}/qualification", json=QUALIFICATION)
    [(_, published)] = await outbox(api, operated)
    assert published["path"] == "qualify"
    assert (await alice.get(f"/v1/leads/{operated}")).json()["path"] == "qualify"


async def test_a_site_rule_beats_its_source_rule(api: QualifyApi) -> None:
    admin = await api.client("root", roles=("admin",))
    await admin.put("/v1/routing/sources/leboncoin", json={"path": "direct"})
    await admin.put(
        "/v1/routing/sites/lyon",
        json={"path": "qualify", "ad_ref_prefixes": ["LYO"]},
    )
    await admin.put(
        "/v1/routing/sites/lyon-7",
        json={
            "path": "direct",
            "ad_ref_prefixes": ["LYO-7"],
            "channel": "in_store",
            "intent": "info",
        },
    )
    lyon = await api.add_lead(ad_ref="lyo-123")  # the call centre of Lyon qualifies its leads
    lyon7 = await api.add_lead(ad_ref="LYO-7-55")  # the longest prefix wins
    other = await api.add_lead(ad_ref="PAR-1")  # the source's rule
    alice = await api.client("alice")
    assert await queue_ids(alice) == [lyon]
    assert await queue_ids(alice, site="lyon") == [lyon]  # the site is known at receipt
    [(_, event)] = await outbox(api, lyon7)
    assert (event["path"], event["site"], event["intent"]) == ("direct", "lyon-7", "info")
    [(_, event)] = await outbox(api, other)
    assert (event["path"], event["site"]) == ("direct", None)


@pytest.fixture
async def direct_api(tmp_path: Path, clock: Clock) -> AsyncIterator[QualifyApi]:
    settings = qualify_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'qualify.db'}",
        tmp_path,
        routing_default_path="direct",
        direct_channel="full_web",
    )
    async with open_api(settings, clock) as api:
        yield api


async def test_the_default_path_comes_from_the_settings(direct_api: QualifyApi) -> None:
    admin = await direct_api.client("root", roles=("admin",))
    await admin.put("/v1/routing/sources/email", json={"path": "qualify"})
    direct = await direct_api.add_lead(source="leboncoin")
    operated = await direct_api.add_lead(source="email")
    [(_, event)] = await outbox(direct_api, direct)
    assert (event["path"], event["channel"]) == ("direct", "full_web")
    assert await outbox(direct_api, operated) == []
    policy = (await admin.get("/v1/routing")).json()
    assert policy["default"]["path"] == "direct"


async def test_a_direct_lead_still_gets_its_first_answer(api: QualifyApi) -> None:
    admin = await api.client("root", roles=("admin",))
    await admin.put("/v1/routing/sources/facebook", json={"path": "direct"})
    await admin.put("/v1/routing/sites/lyon", json={"path": "direct", "ad_ref_prefixes": ["LYO-"]})
    direct = await api.add_lead(source="facebook", first_answer=True)
    by_site = await api.add_lead(ad_ref="LYO-3", first_answer=True)
    for lead in (direct, by_site):
        messages = await outgoing(api, lead)
        assert sorted(message.channel for message in messages) == ["email", "sms"]
        assert {message.kind for message in messages} == {"first_answer"}
    [(kind, _)] = await outbox(api, direct)
    assert kind == "lead.qualified.v1"
