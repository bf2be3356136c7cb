"""A sellers' tool on loopback: receives dispatch's webhooks, verifies their Standard Webhooks
signature, logs each one (``webhook-id``, type, lead, assignment), and can be taken down and
brought back on the same port (connections refused meanwhile)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.ports import free_port


@dataclass(frozen=True)
class Delivery:
    webhook_id: str
    event_type: str
    lead_id: str | None
    assignment_id: str | None
    callbacks: dict[str, str]


@dataclass
class Receiver:
    secret: str
    port: int = field(default_factory=free_port)
    log: list[Delivery] = field(default_factory=list)
    refused_signatures: int = 0
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        try:
            Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.refused_signatures += 1
            return Response(status_code=401)
        message: dict[str, Any] = json.loads(body)
        data = message.get("data", {})
        lead = data.get("lead") or {}
        assignment = data.get("assignment") or {}
        self.log.append(
            Delivery(
                webhook_id=request.headers["webhook-id"],
                event_type=str(message.get("type")),
                lead_id=lead.get("lead_id") or data.get("lead_id"),
                assignment_id=assignment.get("id"),
                callbacks=dict(data.get("callbacks") or {}),
            )
        )
        return Response(status_code=204)

    async def start(self) -> None:
        app = Starlette(routes=[Route("/hooks", self._receive, methods=["POST"])])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, access_log=False
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
            self._server = self._task = None

    def offers(self) -> list[Delivery]:
        return [d for d in self.log if d.event_type == "assignment.offered"]
