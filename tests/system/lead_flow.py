"""A lead's whole path for system tests, over HTTP: dispatch's directory (an always-open full-web
pool whose sellers' tool is ``WebhookReceiver``), leads POSTed to ingest, an operator who claims
and qualifies what qualify's queue shows, the webhooks the sellers' tool receives."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.harness import DEV_TOKEN

AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}
ALWAYS = "mon-sun 00:00-24:00"
# Deadlines far beyond a test: no offer expires and is re-offered meanwhile (which would be a
# second offer of the lead, by design).
DISPATCH_QUIET = {"default_accept_minutes": 100_000, "reroute_after_minutes": 100_000}


def lead_body(tag: str, index: int) -> dict[str, Any]:
    """A distinct prospect per lead (crm keys clients by phone and e-mail)."""
    return {
        "source": "leboncoin",
        "source_ref": f"{tag}-{index}",
        "contact": {
            "first_name": "Camille",
            "last_name": f"Durand{index}",
            "phone": f"06{20_000_000 + index:08d}",
            "email": f"camille.{tag}.{index}@example.fr",
        },
        "vehicle": {"ad_ref": f"AD-{index}", "make": "Renault", "model": "Clio"},
    }


@dataclass
class Webhook:
    id: str
    type: str
    lead_id: str | None


@dataclass
class WebhookReceiver:
    """A sellers' tool: an ASGI app that records each webhook (204)."""

    received: list[Webhook] = field(default_factory=list)

    def of_type(self, event_type: str) -> list[Webhook]:
        return [hook for hook in self.received if hook.type == event_type]

    async def __call__(
        self, scope: MutableMapping[str, Any], receive: Any, send: Any
    ) -> None:  # pragma: no cover - driven by uvicorn
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = dict(scope["headers"])
        payload = json.loads(body or b"{}")
        data: dict[str, Any] = payload.get("data") or {}
        lead: dict[str, Any] = data["lead"] if isinstance(data.get("lead"), dict) else {}
        self.received.append(
            Webhook(
                id=headers.get(b"webhook-id", b"").decode(),
                type=str(payload.get("type")),
                lead_id=lead.get("lead_id") or data.get("lead_id"),
            )
        )
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def full_web_pool(dispatch: httpx.AsyncClient, hook_url: str, sellers: int = 3) -> None:
    """Sellers of the full-web pool on shift around the clock, their tool at ``hook_url``."""
    for number in range(sellers):
        response = await dispatch.post(
            "/v1/sellers",
            headers=AUTH,
            json={
                "display_name": f"Web seller {number}",
                "mode": "full_web",
                "site_id": None,
                "capacity": 1000,
                "shifts": ALWAYS,
                "webhook_url": hook_url,
            },
        )
        assert response.status_code == 201, response.text


async def post_lead(ingest: httpx.AsyncClient, tag: str, index: int) -> str:
    response = await ingest.post("/v1/leads", json=lead_body(tag, index), headers=AUTH)
    assert response.status_code == 202, response.text
    lead_id: str = response.json()["id"]
    return lead_id


async def queued(qualify: httpx.AsyncClient) -> list[str]:
    """Every lead id qualify's queue shows (all pages)."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "200", **({"cursor": cursor} if cursor else {})}
        response = await qualify.get("/v1/queue", params=params, headers=AUTH)
        assert response.status_code == 200, response.text
        page = response.json()
        ids += [item["lead_id"] for item in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor:
            return ids


async def qualify_lead(qualify: httpx.AsyncClient, lead_id: str) -> None:
    """An operator claims the lead and qualifies it for the full-web pool."""
    claim = await qualify.post(f"/v1/leads/{lead_id}/claim", headers=AUTH)
    assert claim.status_code == 200, claim.text
    done = await qualify.post(
        f"/v1/leads/{lead_id}/qualification",
        json={"intent": "buy", "channel": "full_web"},
        headers=AUTH,
    )
    assert done.status_code == 201, done.text
