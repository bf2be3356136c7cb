"""Deliveries claimed at birth: the worker's unit of work that queues a message (an offer to a
seller's tool…) writes it already leased to this process's sender and, once it has committed,
hands it over in memory. The sender POSTs it without a claim transaction of its own.

Nothing is lost in a crash: the row is ``pending`` with ``next_attempt_at`` at the end of the
lease, so when this process dies before recording the attempt, any sender (this one after a
restart, another replica) claims it after the lease by the usual ``SKIP LOCKED`` pass and sends
it again: at-least-once, as after a crash between a claim and its record. A unit of work that
rolls back hands nothing over (``after_commit`` actions run only after a commit). A hand-over
whose lease has ended by the time the sender takes it is dropped: its row is due again and the
usual pass claims it (never two senders on one lease).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.session import after_commit
from shared.db.wakeup import Signal

# Room left in a lease when the sender takes a hand-over: less than this and the usual pass
# claims the row instead (so a slow POST does not outlive the lease).
_LEASE_MARGIN_S = 5.0


@dataclass(frozen=True)
class Job:
    """A delivery to send, with its seller's endpoint (None: not usable, never sent)."""

    delivery_id: str
    seller_id: str
    event_type: str
    body: str
    url: str | None
    secret: str | None
    traceparent: str | None = None


class WebhookHandoff:
    """The worker process's queue of deliveries claimed at birth for its sender.

    ``capacity`` bounds the queue (checked when a delivery is written, so a unit of work in
    flight may pass it by its own messages): beyond it new deliveries are written due at once
    and go by the usual claiming pass (a backlog is shared with the other replicas, not
    hoarded)."""

    def __init__(self, signal: Signal, *, lease_s: float, capacity: int) -> None:
        self._signal = signal
        self._lease = timedelta(seconds=lease_s)
        self._margin = timedelta(seconds=min(_LEASE_MARGIN_S, lease_s / 2))
        self._capacity = capacity
        self._queue: deque[tuple[Job, datetime]] = deque()

    def lease_until(self, now: datetime) -> datetime | None:
        """The end of the lease of a delivery queued at ``now``, or None when the queue is full
        (the delivery is then written due at once)."""
        if len(self._queue) >= self._capacity:
            return None
        return now + self._lease

    def hand_over(self, session: AsyncSession, job: Job, lease_until: datetime) -> None:
        """Give ``job`` (its row written in ``session``, leased until ``lease_until``) to the
        sender once the unit of work has committed; never if it rolls back."""

        async def give() -> None:
            self._queue.append((job, lease_until))
            self._signal.notify()

        after_commit(session, give)

    def take(self, limit: int, now: datetime) -> list[Job]:
        """Up to ``limit`` handed-over jobs, oldest first; those whose lease ends within the
        margin are dropped (the usual pass claims their rows)."""
        jobs: list[Job] = []
        while self._queue and len(jobs) < limit:
            job, lease_until = self._queue.popleft()
            if lease_until - now > self._margin:
                jobs.append(job)
        return jobs

    def __len__(self) -> int:
        return len(self._queue)
