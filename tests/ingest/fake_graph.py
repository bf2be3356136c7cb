"""A fake Graph API served over real HTTP on 127.0.0.1 (uvicorn on a free port)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.support.ports import free_port


@dataclass
class FakeGraph:
    url: str = ""
    leads: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, list[int]] = field(default_factory=dict)  # statuses to answer first
    requests: list[dict[str, str]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/{version}/{leadgen_id}")
        async def lead(version: str, leadgen_id: str, request: Request) -> JSONResponse:
            self.requests.append(
                {"version": version, "leadgen_id": leadgen_id, **dict(request.query_params)}
            )
            pending = self.failures.get(leadgen_id)
            if pending:
                status = pending.pop(0)
                return JSONResponse(
                    {"error": {"message": "(#80005) rate limited", "code": 80005}},
                    status_code=status,
                )
            if request.query_params.get("access_token") != "page-token":
                return JSONResponse({"error": {"code": 190}}, status_code=400)
            if leadgen_id not in self.leads:
                return JSONResponse({"error": {"code": 100}}, status_code=400)
            return JSONResponse(self.leads[leadgen_id])

        return app


@asynccontextmanager
async def serve_fake_graph() -> AsyncIterator[FakeGraph]:
    graph = FakeGraph()
    port = free_port()
    config = uvicorn.Config(
        graph.app(), host="127.0.0.1", port=port, log_config=None, access_log=False,
        lifespan="off",
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    graph.url = f"http://127.0.0.1:{port}"
    try:
        yield graph
    finally:
        server.should_exit = True
        await task
