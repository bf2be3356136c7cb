"""Erasures never stuck silently: a request still waiting on a service some minutes after it was
last asked is asked again of the services that have not answered, and raises an alert.

A service's answer (``privacy.erasure-completed.v1``) can be lost between its transaction and
crm (an outbox row lost, a record dropped): without a new question the request would stay
``in_progress`` and the bus scrub would never run. So, every ``erasure_reask_check_interval_s``,
crm re-publishes ``privacy.erasure-requested.v1`` through its outbox for each request asked at
least ``erasure_reask_after_s`` ago, naming in ``services`` those it still waits on (the others
ignore it), and counts it (``crm_erasure_reasks_total``), sets ``crm_erasures_waiting`` per
service and logs ``privacy.erasure_reasked`` (the request id and service names: no personal data).
Every service's erasure handler is idempotent (``shared.privacy.erasure_handler``): asked again,
it erases what is left, nothing, and answers again; crm keeps the first answer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from crm.privacy.metrics import ErasureMetrics
from crm.privacy.repository import ErasureRepository
from crm.settings import CrmSettings
from shared.db.session import session_scope
from shared.events.privacy import ErasureRequestedV1
from shared.outbox import Outbox
from shared.privacy import ERASURE_PARTICIPANTS, ERASURE_REQUESTED
from shared.runtime import Runtime

log = structlog.get_logger(__name__)

BATCH = 100  # requests re-asked per pass (the rest in the next passes, longest waiting first)
WAITING_SCAN = 10_000  # open requests counted for the gauge per pass


@dataclass(frozen=True)
class Reask:
    request_id: str
    services: tuple[str, ...]
    asks: int  # times asked, this one included
    waited: timedelta  # since the request


async def reask_waiting(
    session: AsyncSession, outbox: Outbox, *, now: datetime, after: timedelta
) -> list[Reask]:
    """Ask again, of the services that have not answered, every open request last asked at
    least ``after`` ago."""
    repository = ErasureRepository.from_session(session)
    requests = await repository.asked_before(now - after, BATCH)
    answered = await repository.answered([request.id for request in requests])
    reasks: list[Reask] = []
    for request in requests:
        missing = tuple(s for s in ERASURE_PARTICIPANTS if s not in answered[request.id])
        if not missing:
            continue  # every answer is in: completing it is the completion handler's job
        event = ErasureRequestedV1(
            request_id=request.id,
            client_id=request.client_id,
            lead_ids=list(request.lead_ids),
            contact_hashes=list(request.contact_hashes),
            requested_at=request.requested_at,
            services=list(missing),
        )
        await outbox.stage(session, ERASURE_REQUESTED, request.client_id, event)
        request.asked_at = now
        request.asks += 1
        reasks.append(Reask(request.id, missing, request.asks, now - request.requested_at))
    return reasks


async def waiting_on(session: AsyncSession, *, now: datetime, after: timedelta) -> Counter[str]:
    """Open requests made at least ``after`` ago, per service they still wait on."""
    repository = ErasureRepository.from_session(session)
    request_ids = await repository.open_requested_before(now - after, WAITING_SCAN)
    answered = await repository.answered(request_ids)
    return Counter(
        service
        for request_id in request_ids
        for service in ERASURE_PARTICIPANTS
        if service not in answered[request_id]
    )


async def reask_pass(runtime: Runtime[CrmSettings], metrics: ErasureMetrics) -> list[Reask]:
    """One pass of the worker's job: re-ask, then alert (after the commit: what is logged and
    counted was staged for publication)."""
    now = runtime.clock()
    after = timedelta(seconds=runtime.settings.erasure_reask_after_s)
    async with session_scope(runtime.session_factory) as session:
        reasks = await reask_waiting(session, runtime.outbox, now=now, after=after)
        waiting = await waiting_on(session, now=now, after=after)
    for reask in reasks:
        for service in reask.services:
            metrics.reasks.labels(metrics.service, service).inc()
        log.warning(
            "privacy.erasure_reasked",
            request_id=reask.request_id,
            waiting_on=list(reask.services),
            asks=reask.asks,
            waited_s=int(reask.waited.total_seconds()),
        )
    for service in ERASURE_PARTICIPANTS:
        metrics.waiting.labels(metrics.service, service).set(waiting[service])
    return reasks
