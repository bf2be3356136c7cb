"""The traffic of the pipeline benchmark: dispatch's directory, open-loop leads into ingest, and
a scripted instant operator on qualify (the real HTTP flow: the queue, a claim, a
qualification).

Times are ``time.time()`` (one clock for this process, the receiver and the services'
``processed_at``: they all run on this machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from benchmarks.pipeline.system import TOKEN, WEBHOOK_SECRET, System

AUTH = {"Authorization": f"Bearer {TOKEN}"}
SITES = ("bench-a", "bench-b")
SELLERS_PER_POOL = 6
ALWAYS = "mon-sun 00:00-24:00"
KEEP_ALIVE_S = 3.0


async def set_up_directory(system: System, client: httpx.AsyncClient) -> None:
    """Two always-open sites and the full-web pool, six sellers each, every seller's tool the
    receiver. A site closed by a public holiday falls back to the full-web pool at once, so the
    run does not depend on the calendar."""
    base = system.urls["dispatch"]
    hook = f"{system.receiver_url}/hook"
    for site_id in SITES:
        response = await client.post(
            f"{base}/v1/sites",
            headers=AUTH,
            json={
                "id": site_id,
                "name": f"Site {site_id}",
                "postcode": "69003",
                "opening_hours": ALWAYS,
                "full_web_fallback": True,
                "fallback_after_minutes": 0,
            },
        )
        response.raise_for_status()
    pools: list[tuple[str, str | None]] = [("in_store", name) for name in SITES]
    pools.append(("full_web", None))
    for mode, site in pools:
        for number in range(SELLERS_PER_POOL):
            response = await client.post(
                f"{base}/v1/sellers",
                headers=AUTH,
                json={
                    "display_name": f"Seller {site or 'web'} {number}",
                    "mode": mode,
                    "site_id": site,
                    "capacity": 1000,
                    "shifts": ALWAYS,
                    "webhook_url": hook,
                    "webhook_secret": WEBHOOK_SECRET,
                },
            )
            if response.status_code != 201:
                raise RuntimeError(f"seller not created: {response.status_code} {response.text}")


# scripts/smtp.sh accepts and drops mail to this domain: a real prospect's first answer is
# delivered far away, not bounced back into the dealer's mailbox on this machine.
PROSPECT_MAIL_DOMAIN = "discard.example.fr"


def lead_body(tag: str, index: int, source: str = "leboncoin") -> dict[str, Any]:
    """A distinct prospect per lead (crm keys clients by phone and e-mail)."""
    return {
        "source": source,
        "source_ref": f"bench-{tag}-{index}",
        "contact": {
            "first_name": "Camille",
            "last_name": f"Durand{index}",
            "phone": f"06{12_000_000 + index % 87_000_000:08d}",
            "email": f"camille.{tag}.{index}@{PROSPECT_MAIL_DOMAIN}",
        },
        "vehicle": {"ad_ref": f"AD-{index % 500}", "make": "Renault", "model": "Clio"},
        "message": "Bonjour, la Clio est-elle toujours disponible ?",
    }


def qualification_for(lead_id: str) -> dict[str, Any]:
    """A third of the leads to each site, a third to the full-web pool (by the lead id, so the
    operator needs nothing from the load generator)."""
    pick = int(lead_id.replace("-", "")[:8], 16) % 3
    if pick < len(SITES):
        return {"intent": "buy", "channel": "in_store", "site": SITES[pick]}
    return {"intent": "buy", "channel": "full_web"}


class RawHttp:
    """A minimal HTTP/1.1 keep-alive client for the load: a pool of connections that grows
    when all are busy (open-loop: every request leaves at its time). httpx costs several times
    the CPU per request and its pool slows down with thousands of waiting requests, which would
    make the harness the thing measured on a 2-core machine."""

    def __init__(self, base_url: str) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        # (reader, writer, when it was last used)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self._head = f"Host: {host}:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"

    async def request(
        self, method: str, target: str, payload: object | None = None
    ) -> tuple[int, Any]:
        """Status and decoded JSON body (None when empty). A reused connection that the server
        closed meanwhile (keep-alive expiry: nothing of the request was read) is retried once
        on a new connection, as HTTP clients do; any other failure is the caller's."""
        body = b"" if payload is None else json.dumps(payload).encode()
        connection = self._reusable()
        if connection is not None:
            try:
                return await self._exchange(*connection, method, target, body)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                    raise
        fresh = await asyncio.open_connection(self.host, self.port)
        return await self._exchange(*fresh, method, target, body)

    def _reusable(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """An idle connection used less than ``KEEP_ALIVE_S`` ago (uvicorn closes idle ones
        after 5 s); older ones are closed."""
        now = time.monotonic()
        while self._idle:
            reader, writer, used = self._idle.pop()
            if now - used < KEEP_ALIVE_S and not reader.at_eof():
                return reader, writer
            writer.close()
        return None

    async def _exchange(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        method: str,
        target: str,
        body: bytes,
    ) -> tuple[int, Any]:
        try:
            writer.write(
                f"{method} {target} HTTP/1.1\r\n{self._head}"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length, chunked, close = 0, False, False
            for line in head.lower().split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding" and b"chunked" in value:
                    chunked = True
                elif name == b"connection" and b"close" in value:
                    close = True
            data = await (_read_chunked(reader) if chunked else reader.readexactly(length))
        except BaseException:
            writer.close()
            raise
        if close:
            writer.close()
        else:
            self._idle.append((reader, writer, time.monotonic()))
        return status, json.loads(data) if data else None

    async def close(self) -> None:
        while self._idle:
            _, writer, _ = self._idle.pop()
            writer.close()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
    await reader.readexactly(2)
    return b"".join(parts)


HTTP_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)


@dataclass
class Sent:
    index: int
    scheduled_at: float
    answered_at: float | None = None
    status: int | None = None
    lead_id: str | None = None


async def open_loop(
    ingest_url: str, *, rate: float, seconds: float, tag: str, source: str = "leboncoin"
) -> list[Sent]:
    """POST ``rate`` leads per second for ``seconds``, each at its scheduled time whatever the
    previous ones are doing (open loop: a slow system gets more concurrent requests, not fewer).
    Latencies count from the scheduled time, so a late send is not hidden."""
    count = round(rate * seconds)
    sent = [Sent(index, 0.0) for index in range(count)]
    client = RawHttp(ingest_url)
    start = time.time() + 0.1

    async def post(item: Sent) -> None:
        try:
            item.status, answer = await client.request(
                "POST", "/v1/leads", lead_body(tag, item.index, source)
            )
            if item.status == 202:
                item.lead_id = answer["id"]
        except HTTP_ERRORS:
            item.status = None
        item.answered_at = time.time()

    tasks = []
    for item in sent:
        item.scheduled_at = start + item.index / rate
        delay = item.scheduled_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(post(item)))
    await asyncio.gather(*tasks)
    await client.close()
    return sent


@dataclass
class OperatorTrace:
    visible_at: float
    started_at: float | None = None  # the claim request leaves (at once)
    qualified_at: float | None = None  # the qualification's 201 arrived


@dataclass
class ScriptedOperator:
    """Polls qualify's queue every ``poll_interval_s`` (all pages); each new lead is claimed and
    qualified at once by one of ``operators`` concurrent operators (think time zero; a lead
    waits only when all are busy). A lead is *visible* when a poll's answer lists it: the
    figure carries up to one poll interval of resolution."""

    qualify_url: str
    poll_interval_s: float = 0.1
    operators: int = 32
    traces: dict[str, OperatorTrace] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)
    failed: set[str] = field(default_factory=set)  # leads the operator could not qualify
    polls: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        self._client = RawHttp(self.qualify_url)
        self._free = asyncio.Semaphore(self.operators)
        working: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                started = time.monotonic()
                for lead_id in await self._poll():
                    task = asyncio.create_task(self._qualify(lead_id))
                    working.add(task)
                    task.add_done_callback(working.discard)
                pause = self.poll_interval_s - (time.monotonic() - started)
                if pause > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), pause)
            if working:
                await asyncio.gather(*working)
        finally:
            for task in working:
                task.cancel()
            await self._client.close()

    async def _poll(self) -> list[str]:
        """The leads this poll shows for the first time."""
        new: list[str] = []
        cursor: str | None = None
        while True:
            target = "/v1/queue?limit=200" + (f"&cursor={quote(cursor)}" if cursor else "")
            try:
                status, page = await self._client.request("GET", target)
            except HTTP_ERRORS as exc:
                self.failures[f"queue {type(exc).__name__}"] += 1
                return new
            self.polls += 1
            if status != 200:
                self.failures[f"queue {status}"] += 1
                return new
            seen_at = time.time()
            for item in page["items"]:
                lead_id = item["lead_id"]
                if lead_id not in self.traces:
                    self.traces[lead_id] = OperatorTrace(seen_at)
                    new.append(lead_id)
            cursor = page.get("next_cursor")
            if not cursor:
                return new

    async def _qualify(self, lead_id: str) -> None:
        async with self._free:
            trace = self.traces[lead_id]
            trace.started_at = time.time()
            try:
                claim, _ = await self._client.request("POST", f"/v1/leads/{lead_id}/claim")
                if claim != 200:
                    self.failures[f"claim {claim}"] += 1
                    self.failed.add(lead_id)
                    return
                done, _ = await self._client.request(
                    "POST", f"/v1/leads/{lead_id}/qualification", qualification_for(lead_id)
                )
            except HTTP_ERRORS as exc:
                self.failures[f"qualify {type(exc).__name__}"] += 1
                self.failed.add(lead_id)
                return
            if done != 201:
                self.failures[f"qualification {done}"] += 1
                self.failed.add(lead_id)
                return
            trace.qualified_at = time.time()
