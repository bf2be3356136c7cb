"""The sender: hands queued messages to SMTP and the SMS provider, without ever doubling one.

A pass (1) recovers the claims whose lease ran out, (2) claims due messages in one transaction
committed before any network call (``queued`` → ``sending``, a fresh ``claim_token``, a lease),
then (3) sends them concurrently. Each send commits ``handed_over_at`` just before the
irreversible step (SMTP DATA, the provider's POST), then records the answer (``sent`` with the
server's or provider's id, a retry with backoff, or ``failed``). Every write after the claim is
conditional on the claim token, so a sender whose claim was taken over changes nothing.

An expired claim (the sender died or stalled) is recovered by what is known of it:
- no ``handed_over_at``: nothing left; queued again (safe, whatever happened);
- handed over, SMS: the provider is asked for our tag; sent if found, queued again if not;
- handed over, e-mail: nobody can be asked, so never resent: ``unconfirmed`` (operators see it).
The same applies to a send that fails after hand-over without a server reply (timeout,
connection lost). docs/messaging.md gives the reasoning.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from qualify.messages import state
from qualify.messages.channels import Channel, Job
from qualify.messages.events import MessageRef, sent_row, stage_status, status_row
from qualify.messages.metrics import MessagingMetrics
from qualify.messages.repository import ClaimedWrites, MessageRepository
from qualify.models import OutgoingMessage
from qualify.settings import QualifySettings
from qualify.suppression.service import address_hash, contact_blocks
from shared.clock import Clock, utcnow
from shared.db.session import SessionFactory, read_only, session_scope
from shared.events.payloads import MessageChannel, MessageOutcome
from shared.messaging.errors import NotConfigured, SendError
from shared.outbox import Outbox
from shared.redact import safe_error_text

log = structlog.get_logger(__name__)

_RECORD_TRIES = 6


class ClaimLost(Exception):
    """The claim was taken over (its lease ran out): this sender must not hand the message
    over, nor record anything about it."""


def _job(message: OutgoingMessage, in_reply_to_header: str | None, deadline: float) -> Job:
    assert message.claim_token is not None
    return Job(
        message_id=message.id,
        lead_id=message.lead_id,
        kind=message.kind,
        channel=message.channel,
        to_address=message.to_address,
        subject=message.subject,
        text=message.text,
        html=message.html,
        in_reply_to_header=in_reply_to_header,
        created_at=message.created_at,
        claim_token=message.claim_token,
        attempts=message.attempts,
        operator_id=message.operator_id,
        attempt_id=message.attempt_id,
        deadline=deadline,
    )


def _ref(job: Job) -> MessageRef:
    return MessageRef(
        message_id=job.message_id,
        lead_id=job.lead_id,
        channel=job.channel,
        kind=job.kind,
        operator_id=job.operator_id,
        attempt_id=job.attempt_id,
        created_at=job.created_at,
    )


class MessageSender:
    """Sends claimed messages and records their outcomes (see the module's docstring)."""

    def __init__(
        self,
        session_factory: SessionFactory,
        settings: QualifySettings,
        channels: Mapping[MessageChannel, Channel],
        *,
        outbox: Outbox,
        clock: Clock = utcnow,
        metrics: MessagingMetrics | None = None,
        hold_connections: bool = False,
    ) -> None:
        self._sessions = session_factory
        # ``hold_connections``: the claimed writes keep their connections between messages
        # (``ClaimedWrites``); ``aclose`` gives them back.
        self._writes = ClaimedWrites(session_factory, hold=hold_connections)
        self._settings = settings
        self._channels = dict(channels)
        self._outbox = outbox
        self._clock = clock
        self._metrics = metrics
        self._key = settings.privacy_hmac_key.get_secret_value().encode()
        self._lease = timedelta(seconds=settings.message_send_lease_s)
        # A send is cut well inside its lease: a live sender never outlasts its claim.
        self._send_timeout_s = settings.message_send_lease_s / 2
        self._limit = asyncio.Semaphore(settings.message_send_concurrency)
        self._started: set[asyncio.Task[None]] = set()

    @property
    def batch_size(self) -> int:
        return self._settings.message_send_batch_size

    def _configured(self) -> list[MessageChannel]:
        return [name for name, channel in self._channels.items() if channel.configured]

    def _count(self, job: Job | OutgoingMessage, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.send(job.channel, job.kind, outcome)

    # --- a pass -------------------------------------------------------------------------------

    async def send_due(self) -> int:
        """One pass; how many messages it claimed (a full batch: call again at once)."""
        # Most passes find nothing (a wake-up for a first answer claimed at birth, the poll):
        # one read without a transaction says so.
        async with read_only(self._sessions) as session:
            if not await MessageRepository.from_session(session).has_work(
                self._clock(), self._configured()
            ):
                return 0
        # Recovery and the claim share one transaction (two round trips less per pass), unless
        # a provider must be asked first: then the claim comes after the answer, as alone.
        async with session_scope(self._sessions) as session:
            _, to_verify = await self._recover_in(session, self._clock())
            jobs = None if to_verify else await self._claim_in(session)
        for job in to_verify:
            await self._verify(job)
        if jobs is None:
            jobs = await self.claim()
        if jobs:
            await asyncio.gather(*(self._send_bounded(job) for job in jobs))
        return len(jobs)

    async def claim(self) -> list[Job]:
        """Claim due messages: committed before any network call. Expired ones, and ones the
        person blocked since they were decided, are cancelled instead."""
        if not self._configured():
            return []
        async with session_scope(self._sessions) as session:
            return await self._claim_in(session)

    async def _claim_in(self, session: AsyncSession) -> list[Job]:
        channels = self._configured()
        if not channels:
            return []
        now = self._clock()
        # Sends wait for a slot of the concurrency limit: the time counts from the claim.
        deadline = asyncio.get_running_loop().time() + self._send_timeout_s
        jobs: list[Job] = []
        repository = MessageRepository.from_session(session)
        for message in await repository.claim_due(now, channels, self.batch_size):
            if message.expires_at <= now:
                await self._cancel(session, message, "expired", now)
                continue
            reason = await self._blocked(session, message)
            if reason is not None:
                await self._cancel(session, message, reason, now)
                continue
            message.status = state.SENDING
            message.claim_token = str(uuid.uuid4())
            message.lease_expires_at = now + self._lease
            message.handed_over_at = None
            message.attempts += 1
            message.waiting_reason = None
            header = None
            if message.in_reply_to is not None and message.channel == "email":
                replied = await repository.get_incoming(message.in_reply_to)
                header = replied.message_id_header if replied is not None else None
            jobs.append(_job(message, header, deadline))
        return jobs

    async def _blocked(self, session: AsyncSession, message: OutgoingMessage) -> str | None:
        digest = address_hash(message.to_address, self._key)
        # The channel block and, for a first answer, the do-not-contact list: one statement.
        blocks = await contact_blocks(
            session,
            suppressed=[digest] if message.kind == "first_answer" else [],
            blocked=[digest],
        )
        reason = blocks.blocked_on(message.channel, [digest])
        if reason is not None:
            return "unreachable" if reason == "hard_bounce" else "opted_out"
        if blocks.suppressed:
            return "suppressed"
        return None

    async def _cancel(
        self, session: AsyncSession, message: OutgoingMessage, reason: str, now: datetime
    ) -> None:
        message.status = state.CANCELLED
        message.reason = reason
        message.finished_at = now
        await stage_status(
            session, self._outbox, MessageRef.of(message), "cancelled", reason=reason, at=now
        )
        self._count(message, "cancelled")
        log.info("message.cancelled", message_id=message.id, lead_id=message.lead_id, reason=reason)

    # --- claimed at birth (a first answer decided in this process) -------------------------

    def claim_at_birth(self, message: OutgoingMessage, now: datetime) -> Job | None:
        """Make ``message``, not yet inserted, already claimed by this sender (``sending``, a
        fresh claim token, a lease, its first attempt); the job to ``start`` once the
        transaction inserting it committed. None when its channel cannot leave from here.

        The checks of a claim hold already: the caller decided it in this very transaction
        (the do-not-contact list and the channel's blocks read, not expired: just made). If
        this process dies before the send, the lease runs out and recovery queues it again
        (nothing was handed over), as for any claim."""
        channel = self._channels.get(message.channel)
        if channel is None or not channel.configured:
            return None
        message.status = state.SENDING
        message.claim_token = str(uuid.uuid4())
        message.lease_expires_at = now + self._lease
        message.handed_over_at = None
        message.attempts += 1
        message.waiting_reason = None
        deadline = asyncio.get_running_loop().time() + self._send_timeout_s
        return _job(message, None, deadline)

    def start(self, job: Job) -> None:
        """Send a job claimed at birth, in the background (``drain`` waits for it)."""
        task = asyncio.get_running_loop().create_task(self._send_bounded(job))
        self._started.add(task)
        task.add_done_callback(self._started.discard)

    async def drain(self) -> None:
        """Wait for the sends ``start`` began (a stopping sender lets them finish)."""
        while self._started:
            await asyncio.gather(*self._started, return_exceptions=True)

    async def aclose(self) -> None:
        """Give back the connections the claimed writes hold (after ``drain``)."""
        await self._writes.close()

    # --- one send -----------------------------------------------------------------------------

    async def _send_bounded(self, job: Job) -> None:
        async with self._limit:
            await self.send(job)

    async def send(self, job: Job) -> None:
        channel = self._channels[job.channel]
        loop = asyncio.get_running_loop()
        handed = False

        async def hand_over() -> None:
            nonlocal handed
            if loop.time() >= job.deadline:
                raise TimeoutError()  # late: not handed over, so retried
            if not await self._update(job, handed_over_at=self._clock()):
                raise ClaimLost()  # taken over: the message is someone else's now
            handed = True

        try:
            async with asyncio.timeout_at(job.deadline):
                provider_id = await channel.send(job, hand_over)
        except ClaimLost:
            self._count(job, "claim_lost")
            log.warning("message.claim_lost", message_id=job.message_id, lead_id=job.lead_id)
            return
        except SendError as error:
            if handed and error.code is None and error.transient:
                await self._ambiguous(job, channel, error.reason)
            elif error.transient:
                await self._retry(job, error)
            else:
                await self._fail(job, "permanent_error", error.reason)
            return
        except TimeoutError:
            if handed:
                await self._ambiguous(job, channel, "send timeout after hand-over")
            else:
                await self._retry(job, SendError("send timeout"))
            return
        except Exception as exc:  # a bug or an unexpected failure: the same rules
            reason = safe_error_text(exc)
            log.error("message.send_error", message_id=job.message_id, error=reason)
            if handed:
                await self._ambiguous(job, channel, reason)
            else:
                await self._retry(job, SendError(reason))
            return
        await self._sent(job, provider_id)

    async def _sent(self, job: Job, provider_id: str | None) -> None:
        now = self._clock()

        async def record() -> bool:
            # The outcome and its event: one statement on PostgreSQL.
            return await self._writes.update_staging(
                job.message_id,
                job.claim_token,
                outbox=self._outbox.table,
                event=sent_row(self._outbox, _ref(job), sent_at=now),
                status=state.SENT,
                sent_at=now,
                provider_message_id=provider_id,
                lease_expires_at=None,
                last_error=None,
            )

        if await self._record(job, record):
            self._count(job, "sent")
            if self._metrics is not None:
                self._metrics.handover_seconds.labels(
                    self._metrics.service, job.channel, job.kind
                ).observe(max((now - job.created_at).total_seconds(), 0.0))
            log.info(
                "message.sent",
                message_id=job.message_id,
                lead_id=job.lead_id,
                channel=job.channel,
                kind=job.kind,
            )

    async def _retry(self, job: Job, error: SendError) -> None:
        if job.attempts >= self._settings.message_max_attempts and not isinstance(
            error, NotConfigured
        ):
            await self._fail(job, "gave_up", error.reason)
            return
        now = self._clock()
        settings = self._settings
        delay = min(
            settings.message_retry_base_s * 2 ** (job.attempts - 1), settings.message_retry_max_s
        )
        delay *= random.uniform(0.9, 1.1)  # replicas do not retry in step
        waiting = None
        if isinstance(error, NotConfigured):
            waiting = (
                state.SMTP_NOT_CONFIGURED if job.channel == "email" else state.SMS_NOT_CONFIGURED
            )

        async def record() -> bool:
            return await self._writes.update(
                job.message_id,
                job.claim_token,
                status=state.QUEUED,
                next_attempt_at=now + timedelta(seconds=delay),
                claim_token=None,
                lease_expires_at=None,
                handed_over_at=None,
                last_error=error.reason[:300],
                waiting_reason=waiting,
            )

        if await self._record(job, record):
            self._count(job, "retry")
            log.info(
                "message.retry",
                message_id=job.message_id,
                channel=job.channel,
                attempt=job.attempts,
                error=error.reason,
                in_s=round(delay, 1),
            )

    async def _fail(self, job: Job, reason: str, error: str) -> None:
        await self._finish(job, "failed", reason, error)

    async def _ambiguous(self, job: Job, channel: Channel, error: str) -> None:
        """Handed over, answer unknown. SMS: leave it to recovery, which asks the provider (after
        a short pause, so that a message it took is listed). E-mail: never resent."""
        if channel.verifiable:
            soon = self._clock() + timedelta(seconds=30)

            async def record() -> bool:
                return await self._writes.update(
                    job.message_id, job.claim_token, lease_expires_at=soon, last_error=error[:300]
                )

            await self._record(job, record)
            log.warning("message.send_ambiguous", message_id=job.message_id, channel=job.channel)
            return
        await self._finish(job, "unconfirmed", "answer_lost", error)

    async def _finish(self, job: Job, status: MessageOutcome, reason: str, error: str) -> None:
        now = self._clock()

        async def record() -> bool:
            return await self._writes.update_staging(
                job.message_id,
                job.claim_token,
                outbox=self._outbox.table,
                event=status_row(self._outbox, _ref(job), status, reason=reason, at=now),
                status=status,
                reason=reason,
                finished_at=now,
                lease_expires_at=None,
                last_error=error[:300],
            )

        if await self._record(job, record):
            self._count(job, status)
            log.warning(
                "message.finished",
                message_id=job.message_id,
                lead_id=job.lead_id,
                channel=job.channel,
                status=status,
                reason=reason,
                error=error,
            )

    async def _update(self, job: Job, **values: Any) -> bool:
        return await self._writes.update(job.message_id, job.claim_token, **values)

    async def _record(self, job: Job, write: Callable[[], Awaitable[bool]]) -> bool:
        """Run ``write`` (a ``ClaimedWrites`` write: its own unit of work, one statement on
        PostgreSQL), retrying while the database fails: the answer of a hand-over is worth
        keeping. False when the claim was taken over (or never recorded: recovery then decides,
        by the same rules)."""
        pause = 0.2
        for attempt in range(1, _RECORD_TRIES + 1):
            try:
                done = await write()
            except (SQLAlchemyError, OSError) as exc:
                log.warning(
                    "message.record_failed",
                    message_id=job.message_id,
                    attempt=attempt,
                    error=safe_error_text(exc),
                )
                if attempt == _RECORD_TRIES:
                    return False
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
                continue
            if not done:
                self._count(job, "claim_lost")
                log.warning("message.claim_lost", message_id=job.message_id, lead_id=job.lead_id)
            return done
        return False  # pragma: no cover

    # --- expired claims -----------------------------------------------------------------------

    async def recover_expired(self) -> int:
        """Resolve the claims whose lease ran out (their sender died or stalled)."""
        async with session_scope(self._sessions) as session:
            resolved, to_verify = await self._recover_in(session, self._clock())
        for job in to_verify:
            await self._verify(job)
        return resolved

    async def _recover_in(self, session: AsyncSession, now: datetime) -> tuple[int, list[Job]]:
        """Recovery's writes in ``session``: how many claims it resolved, and the handed-over
        SMS whose provider must be asked (after the commit: the claim is taken over first)."""
        to_verify: list[Job] = []  # handed-over SMS: ask the provider
        resolved = 0
        repository = MessageRepository.from_session(session)
        for message in await repository.expired_claims(now, self.batch_size):
            resolved += 1
            channel = self._channels.get(message.channel)
            if message.handed_over_at is None:
                # Nothing went out: the sender stopped before the irreversible step.
                message.status = state.QUEUED
                message.claim_token = None
                message.lease_expires_at = None
                message.next_attempt_at = now
                self._count(message, "requeued")
                log.warning("message.claim_expired", message_id=message.id, action="requeued")
            elif channel is not None and channel.verifiable and channel.configured:
                # Ask the provider, outside this transaction: take the claim over first.
                message.claim_token = str(uuid.uuid4())
                message.lease_expires_at = now + self._lease
                deadline = asyncio.get_running_loop().time() + self._send_timeout_s
                to_verify.append(_job(message, None, deadline))
            else:
                message.status = state.UNCONFIRMED
                message.reason = "crashed_mid_send"
                message.claim_token = None
                message.lease_expires_at = None
                await stage_status(
                    session,
                    self._outbox,
                    MessageRef.of(message),
                    "unconfirmed",
                    reason="crashed_mid_send",
                    at=now,
                )
                self._count(message, "unconfirmed")
                log.warning("message.claim_expired", message_id=message.id, action="unconfirmed")
        return resolved, to_verify

    async def _verify(self, job: Job) -> None:
        channel = self._channels[job.channel]
        try:
            provider_id = await channel.find_sent(job)
        except Exception as exc:
            # Cannot tell now: the lease taken above expires and the next pass asks again.
            log.warning(
                "message.verify_failed", message_id=job.message_id, error=safe_error_text(exc)
            )
            return
        if provider_id is not None:
            await self._sent(job, provider_id)
            self._count(job, "recovered_sent")
            return
        if job.attempts >= self._settings.message_max_attempts:
            # Not sent, and out of attempts (each ended without an answer): give up.
            await self._fail(job, "gave_up", "no answer from the provider, not sent")
            return
        now = self._clock()

        async def requeue() -> bool:
            return await self._writes.update(
                job.message_id,
                job.claim_token,
                status=state.QUEUED,
                next_attempt_at=now,
                claim_token=None,
                lease_expires_at=None,
                handed_over_at=None,
            )

        if await self._record(job, requeue):
            self._count(job, "requeued")
            log.warning("message.claim_expired", message_id=job.message_id, action="requeued")
