"""Waking the sender at once when this process decided a message (the worker's own consumer),
instead of waiting for its next poll. Messages decided elsewhere (the API) are found by the
poll."""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.session import after_commit


class SenderWakeup:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()

    def notify_after_commit(self, session: AsyncSession) -> None:
        """Wake the sender once ``session`` committed: the new rows are visible then."""

        async def wake() -> None:
            self.notify()

        after_commit(session, wake)

    def clear(self) -> None:
        self._event.clear()

    async def wait(self, stop: asyncio.Event, timeout_s: float) -> None:
        """Until notified, stopped, or ``timeout_s`` passed."""
        waits = [asyncio.ensure_future(self._event.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting
