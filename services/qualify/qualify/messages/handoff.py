"""The first answers decided in this process go straight to its running sender: inserted already
claimed (``MessageSender.claim_at_birth``) and started once their transaction committed, instead
of being queued, then found and claimed by a pass of the sender (one transaction less per
message). Without a running sender here (the API, a test, a stopping worker) they are queued as
any message is."""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from qualify.messages.channels import Job
from qualify.messages.sender import MessageSender
from qualify.models import OutgoingMessage
from shared.db.session import after_commit

log = structlog.get_logger(__name__)


class SenderHandoff:
    def __init__(self) -> None:
        self._sender: MessageSender | None = None

    def attach(self, sender: MessageSender) -> None:
        self._sender = sender

    def detach(self, sender: MessageSender) -> None:
        if self._sender is sender:
            self._sender = None

    @property
    def attached(self) -> bool:
        """A sender runs in this process (it claims every message it can send)."""
        return self._sender is not None

    def claim(self, message: OutgoingMessage, now: datetime) -> Job | None:
        """Claim ``message`` (not yet inserted) for this process's sender; None: queue it."""
        sender = self._sender
        return None if sender is None else sender.claim_at_birth(message, now)

    def start_after_commit(self, session: AsyncSession, job: Job) -> None:
        """Once the row of ``job`` is committed, the sender that claimed it sends it."""
        sender = self._sender
        if sender is None:  # pragma: no cover - claim() returned None then
            return

        async def start() -> None:
            if self._sender is sender:
                sender.start(job)
            else:
                # The sender stopped meanwhile: the lease runs out, recovery queues it again.
                log.info("message.claimed_at_birth_left", message_id=job.message_id)

        after_commit(session, start)
