"""A sellers' tool for benchmarks, in its own process: receives dispatch's webhooks, verifies
their Standard Webhooks signature, and records when each arrived.

    python -m benchmarks.pipeline.receiver --port 8123 --secret whsec_…

- ``POST /hook``: verify (``standardwebhooks``: signature and timestamp), record
  ``{at, id, type, lead_id, valid}`` (``at``: ``time.time()`` once the body is read), answer 204
  (401 when the signature is wrong: dispatch retries, as a real tool would make it).
- ``GET /records?since=N``: the records from the N-th on, as JSON (the benchmark reads them
  after each phase, so the receiving side does no other work while leads flow).
- ``GET /healthz``.

A plain ASGI app under uvicorn: the receiver should cost as little as a tool that does nothing,
and it must not run in the benchmark's event loop (it would share, and skew, its timing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support.ports import free_port

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
ROOT = Path(__file__).resolve().parents[2]
Send = Callable[[Message], Awaitable[None]]


def _lead_id(body: dict[str, Any]) -> str | None:
    data = body.get("data")
    if not isinstance(data, dict):
        return None
    lead = data.get("lead")
    if isinstance(lead, dict) and isinstance(lead.get("lead_id"), str):
        return str(lead["lead_id"])
    value = data.get("lead_id")
    return value if isinstance(value, str) else None


class Receiver:
    def __init__(self, secret: str) -> None:
        self._webhook = Webhook(secret)
        self.records: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if method == "POST" and path == "/hook":
            await self._hook(scope, receive, send)
        elif method == "GET" and path == "/records":
            since = int(parse_qs(scope.get("query_string", b"").decode()).get("since", ["0"])[0])
            await _answer(send, 200, json.dumps(self.records[since:]).encode())
        elif method == "GET" and path == "/healthz":
            await _answer(send, 200, b'{"status":"ok"}')
        else:
            await _answer(send, 404, b"{}")

    async def _hook(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        arrived = time.time()
        body = b"".join(chunks)
        headers = {key.decode(): value.decode() for key, value in scope["headers"]}
        try:
            payload = self._webhook.verify(body, headers)
            valid = True
        except WebhookVerificationError:
            payload = json.loads(body)
            valid = False
        self.records.append(
            {
                "at": arrived,
                "id": headers.get("webhook-id"),
                "type": payload.get("type"),
                "lead_id": _lead_id(payload),
                "valid": valid,
            }
        )
        await _answer(send, 204 if valid else 401, b"")


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")] if body else [],
        }
    )
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def receiver_process(secret: str) -> AsyncIterator[str]:
    """Run the receiver as a subprocess on a free port; yields its base URL."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "benchmarks.pipeline.receiver"),
        *("--port", str(port), "--secret", secret),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                if process.returncode is not None:
                    raise RuntimeError(f"the webhook receiver exited ({process.returncode})")
                try:
                    if (await client.get(f"{url}/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        yield url
    finally:
        if process.returncode is None:
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def records(url: str, since: int = 0) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/records", params={"since": str(since)}, timeout=30)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline.receiver")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    uvicorn.run(
        Receiver(args.secret),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


if __name__ == "__main__":
    main()
