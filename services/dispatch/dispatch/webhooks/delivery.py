"""Webhook delivery to sellers' tools: Standard Webhooks signatures, retries on a schedule,
``Retry-After`` on 429/503, ``410 Gone`` disables the endpoint, auto-disable after repeated
failures, and a delivery log of attempts (status, latency; never the body).

A pass claims due deliveries (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, then a short lease so no
other replica sends them meanwhile), POSTs them concurrently with the worker's one client
(``webhook_http_client``: kept-alive connections, every one checked by
``dispatch.webhooks.destinations``; a delivery goes straight through its pool), then records the
results in one transaction. Between passes
the worker's loop sleeps until the earliest pending delivery is due (bounded), and a queued
delivery wakes it at once (``shared.db.wakeup``).

A destination that is not allowed (a loopback, private or link-local address, written in the URL
or resolved from its name) is a failed attempt (``destination_refused``) that is not retried: the
message fails at once and counts toward the endpoint's auto-disable, like any failure.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook

from dispatch.directory.repository import DirectoryRepository
from dispatch.metrics import DispatchMetrics
from dispatch.models import WebhookAttempt
from dispatch.settings import DispatchSettings
from dispatch.webhooks.destinations import DestinationRefused, WebhookClient, webhook_client
from dispatch.webhooks.handoff import Job, WebhookHandoff
from dispatch.webhooks.repository import (
    Claimed,
    Delivered,
    WebhookRepository,
    record_delivered_alone,
)
from dispatch.webhooks.service import disable_endpoint
from shared.clock import Clock, utcnow
from shared.db.session import SessionFactory, read_only, session_scope, single_statement
from shared.outbox import Outbox

log = structlog.get_logger(__name__)

THROTTLED = (429, 503)
REFUSED = "destination_refused"


def webhook_http_client(settings: DispatchSettings) -> WebhookClient:
    """The client webhooks are sent with: only to the destinations the settings allow."""
    return webhook_client(
        settings.webhook_destinations(),
        timeout=settings.webhook_timeout_s,
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
    )


@dataclass(frozen=True)
class Result:
    status_code: int | None
    outcome: str
    latency_ms: int
    retry_after_s: float | None = None


def signed_headers(secret: str, msg_id: str, body: str, at: datetime) -> dict[str, str]:
    """The three Standard Webhooks headers (timestamp: real time of this attempt)."""
    signature = _signer(secret).sign(msg_id, at, body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": "vo-leads-dispatch/1",
    }


@lru_cache(maxsize=1024)
def _signer(secret: str) -> Webhook:
    """The signer of a secret (decoding the secret once, not at every attempt)."""
    return Webhook(secret)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def outcome_of(status_code: int) -> str:
    if 200 <= status_code < 300:
        return "delivered"
    if status_code == 410:
        return "gone"
    if status_code in THROTTLED:
        return "throttled"
    if 300 <= status_code < 400:
        return "redirect_refused"
    return "http_error"


class WebhookSender:
    """``clock`` schedules (due deliveries, retries, the delivery log); ``wall_clock`` stamps and
    signs each attempt and reads ``Retry-After`` dates: the receiver checks the timestamp against
    its own clock, so it is real time whatever ``clock`` says (tests move ``clock``)."""

    def __init__(
        self,
        session_factory: SessionFactory,
        settings: DispatchSettings,
        client: httpx.AsyncClient,
        *,
        outbox: Outbox,
        clock: Clock = utcnow,
        wall_clock: Clock = utcnow,
        metrics: DispatchMetrics | None = None,
        handoff: WebhookHandoff | None = None,
    ) -> None:
        self._metrics = metrics
        self._handoff = handoff
        self._session_factory = session_factory
        self._settings = settings
        self._client = client
        self._outbox = outbox
        self._clock = clock
        self._wall_clock = wall_clock
        self._destinations = settings.webhook_destinations()
        # When the earliest pending delivery is due, as the last pass's transaction saw it
        # (``pause`` after a pass needs no transaction of its own); unknown until a pass ends.
        self._next_due: datetime | _Unknown | None = _UNKNOWN
        # The same, kept for the next pass (``pause`` forgets ``_next_due``): a pass of hand-overs
        # claims too only when due deliveries were seen (or not looked for).
        self._due_seen: datetime | _Unknown | None = _UNKNOWN

    async def send_due(self) -> int:
        """One pass: take the deliveries handed over at birth, claim due ones (unless the
        hand-overs fill the batch, or the last pass saw none due), send them, record the
        results. Returns how many."""
        batch = self._settings.webhook_batch_size
        due_seen, self._due_seen = self._due_seen, _UNKNOWN
        jobs = self._handoff.take(batch, self._clock()) if self._handoff is not None else []
        if not jobs:
            jobs = await self._claim(batch)
        elif len(jobs) < batch and self._is_due(due_seen):
            jobs += await self._claim(batch - len(jobs))
        if len(jobs) == 1:  # the usual pass at a low rate: no task to gather
            await self._record_all([(jobs[0], await self._deliver(jobs[0]))])
        elif jobs:
            results = await asyncio.gather(*(self._deliver(job) for job in jobs))
            await self._record_all(list(zip(jobs, results, strict=True)))
        return len(jobs)

    async def pause(self, longest_s: float) -> float:
        """Seconds until the earliest pending delivery is due (a retry, a lease that ends), at
        most ``longest_s``; a delivery queued meanwhile wakes the worker's loop. Right after a
        pass, the due time its last transaction read is used (read once: a later call asks
        the database)."""
        if self._handoff is not None and len(self._handoff):
            return 0.0  # handed over meanwhile
        due, self._next_due = self._next_due, _UNKNOWN
        if isinstance(due, _Unknown):
            async with read_only(self._session_factory) as session:
                due = await WebhookRepository(session).next_due()
        if due is None:
            return longest_s
        return min(max((due - self._clock()).total_seconds(), 0.0), longest_s)

    def _is_due(self, due: datetime | _Unknown | None) -> bool:
        """Whether ``due`` (the last pass's reading) is by now, or unknown."""
        return isinstance(due, _Unknown) or (due is not None and due <= self._clock())

    async def _claim(self, batch: int) -> list[Job]:
        now = self._clock()
        lease = now + timedelta(seconds=self._settings.webhook_lease_s)
        self._next_due = _UNKNOWN
        # The claim is one UPDATE … RETURNING, atomic by itself: autocommit on PostgreSQL.
        async with single_statement(self._session_factory) as session:
            repository = WebhookRepository(session)
            claimed = await repository.claim(now, lease, batch)
            if not claimed:  # nothing to send: the pause is read in the same transaction
                self._next_due = self._due_seen = await repository.next_due()
        return [
            Job(
                delivery_id=row.id,
                seller_id=row.seller_id,
                event_type=row.event_type,
                body=row.body,
                url=row.webhook_url if usable(row) else None,
                secret=row.webhook_secret,
                traceparent=row.traceparent,
            )
            for row in claimed
        ]

    async def _deliver(self, job: Job) -> Result:
        if job.url is None or job.secret is None:
            return Result(None, "endpoint_disabled", 0)
        refusal = self._destinations.url_refusal(job.url)
        if refusal is not None:  # a URL stored before it was checked, or the rules changed
            log.warning("dispatch.webhook_refused", delivery_id=job.delivery_id, reason=refusal)
            return Result(None, REFUSED, 0)
        headers = signed_headers(job.secret, job.delivery_id, job.body, self._wall_clock())
        if job.traceparent is not None:
            headers["traceparent"] = job.traceparent
        started = time.perf_counter()
        try:
            status, retry_after_header = await self._post(job.url, job.body.encode(), headers)
        except DestinationRefused as refused:
            log.warning(
                "dispatch.webhook_refused", delivery_id=job.delivery_id, reason=refused.reason
            )
            result = Result(None, REFUSED, _elapsed_ms(started))
        except httpx.TimeoutException:
            result = Result(None, "timeout", _elapsed_ms(started))
        except httpx.HTTPError:
            result = Result(None, "network_error", _elapsed_ms(started))
        else:
            retry_after = (
                parse_retry_after(retry_after_header, self._wall_clock())
                if status in THROTTLED
                else None
            )
            result = Result(status, outcome_of(status), _elapsed_ms(started), retry_after)
        return result

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str | None]:
        """The status code and ``Retry-After`` of one POST (no redirects followed): straight
        through the pool with the worker's client, through ``post`` with any other."""
        timeout = self._settings.webhook_timeout_s
        if isinstance(self._client, WebhookClient):
            return await self._client.post_signed(url, body, headers, timeout_s=timeout)
        response = await self._client.post(
            url, content=body, headers=headers, timeout=timeout, follow_redirects=False
        )
        return response.status_code, response.headers.get("retry-after")

    async def _record_all(self, outcomes: list[tuple[Job, Result]]) -> None:
        """Record a pass's results in one unit of work (the attempts and the new states). The
        usual pass, where every message was delivered, is one statement on PostgreSQL (three on
        SQLite) whatever its size, with the due time the worker pauses till (when it pauses
        next), run in autocommit there (no BEGIN, no COMMIT round trip); a pass with a failure
        takes the message-by-message path (retries, disabling) in a transaction."""
        delivered = [
            Delivered(job.delivery_id, result.status_code, result.latency_ms)
            for job, result in outcomes
            if result.outcome == "delivered" and result.status_code is not None
        ]
        pauses_next = len(outcomes) < self._settings.webhook_batch_size
        if len(delivered) == len(outcomes):
            recorded = await record_delivered_alone(
                self._session_factory, delivered, self._clock(), next_due=pauses_next
            )
            ids = {result.delivery_id for result, _ in recorded.recorded}
            for job, result in outcomes:
                if job.delivery_id in ids:
                    _log_attempt(job, result)
            if pauses_next:  # the due time came with the record
                self._next_due = self._due_seen = recorded.next_due
        else:
            async with session_scope(self._session_factory) as session:
                repository = WebhookRepository(session)
                # Held by this frame: the session's identity map keeps them while we record.
                loaded = await repository.load(
                    [job.delivery_id for job, _ in outcomes],
                    [job.seller_id for job, _ in outcomes],
                )
                for job, result in outcomes:
                    await self._record(session, job, result)
                del loaded
                if pauses_next:
                    self._next_due = self._due_seen = await repository.next_due()
        if self._metrics is not None:
            service = self._metrics.service
            for job, result in outcomes:
                self._metrics.webhook_attempts.labels(service, job.event_type, result.outcome).inc()
                self._metrics.webhook_latency.labels(service).observe(result.latency_ms / 1000)

    async def _record(self, session: AsyncSession, job: Job, result: Result) -> None:
        now = self._clock()
        settings = self._settings
        deliveries = WebhookRepository(session)
        delivery = await deliveries.delivery(job.delivery_id)
        seller = await DirectoryRepository(session).seller(job.seller_id)
        if delivery is None or seller is None:  # erased meanwhile
            return
        if result.outcome == "endpoint_disabled":
            delivery.status = "failed"
            delivery.last_outcome = result.outcome
            delivery.next_attempt_at = None
            return
        delivery.attempts += 1
        delivery.last_status_code = result.status_code
        delivery.last_outcome = result.outcome
        deliveries.add(
            WebhookAttempt(
                delivery_id=delivery.id,
                attempt=delivery.attempts,
                attempted_at=now,
                status_code=result.status_code,
                outcome=result.outcome,
                latency_ms=result.latency_ms,
            )
        )
        if result.outcome == "delivered":
            delivery.status = "delivered"
            delivery.delivered_at = now
            delivery.next_attempt_at = None
            seller.webhook_failures = 0
        elif result.outcome == "gone":
            delivery.status = "failed"
            delivery.next_attempt_at = None
            seller.webhook_failures += 1
            await disable_endpoint(session, seller, reason="gone", now=now, outbox=self._outbox)
        elif result.outcome == REFUSED:  # the address will not change by waiting: no retries
            delivery.status = "failed"
            delivery.next_attempt_at = None
            seller.webhook_failures += 1
            if seller.webhook_failures >= settings.webhook_disable_after_failures:
                await disable_endpoint(
                    session, seller, reason="too_many_failures", now=now, outbox=self._outbox
                )
        else:
            seller.webhook_failures += 1
            schedule = settings.webhook_retry_schedule_s
            if seller.webhook_failures >= settings.webhook_disable_after_failures:
                delivery.status = "failed"
                delivery.next_attempt_at = None
                await disable_endpoint(
                    session, seller, reason="too_many_failures", now=now, outbox=self._outbox
                )
            elif delivery.attempts >= len(schedule):
                delivery.status = "failed"
                delivery.last_outcome = "exhausted"
                delivery.next_attempt_at = None
            else:
                delay = float(schedule[delivery.attempts])
                if result.retry_after_s is not None:
                    delay = min(result.retry_after_s, settings.webhook_max_retry_after_s)
                delivery.next_attempt_at = now + timedelta(seconds=delay)
        _log_attempt(job, result)


def _log_attempt(job: Job, result: Result) -> None:
    log.info(
        "dispatch.webhook_attempt",
        delivery_id=job.delivery_id,
        seller_id=job.seller_id,
        event_type=job.event_type,
        status_code=result.status_code,
        outcome=result.outcome,
        latency_ms=result.latency_ms,
    )


def usable(row: Claimed) -> bool:
    """The seller's endpoint may be sent to (set and not disabled)."""
    return row.webhook_disabled_at is None and bool(row.webhook_url)


class _Unknown:
    """Not read yet."""


_UNKNOWN = _Unknown()


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
