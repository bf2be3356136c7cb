"""Open SMTP connections kept for the next message (``SmtpSender(…, reuse_connections=True)``).

Opening a connection (TCP, greeting, EHLO, STARTTLS and AUTH when set) costs more CPU than
handing a message over on an open one (measured on loopback Postfix: 2.7 against 1.1 ms). A
connection goes back to the pool only after a message it carried was accepted; any failure
closes it. An idle connection is closed after ``smtp_idle_s`` (before the server's own idle
timeout, usually 300 s for Postfix, much less on some relays), one that carried
``MAX_MESSAGES`` is retired (some servers cap a session), and ``aclose`` closes them all.

The pool is per event loop and not shared across threads; concurrent sends each take their own
connection (at most ``max_idle`` are kept).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import aiosmtplib

# A session that carried this many messages is closed, not reused: some servers cap them.
MAX_MESSAGES = 100
# How long a polite QUIT may take when an idle connection or the pool is closed.
_QUIT_TIMEOUT_S = 2.0


@dataclass
class PooledConnection:
    client: aiosmtplib.SMTP
    messages: int = 0  # accepted on this connection so far
    idle_timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    @property
    def reused(self) -> bool:
        """It carried a message already: the server may have dropped it meanwhile."""
        return self.messages > 0


class SmtpConnectionPool:
    def __init__(
        self,
        connect: Callable[[], aiosmtplib.SMTP],
        *,
        idle_s: float,
        max_idle: int = 4,
    ) -> None:
        self._connect = connect
        self._idle_s = idle_s
        self._max_idle = max_idle
        self._idle: list[PooledConnection] = []  # most recently used last
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def idle_count(self) -> int:
        return len(self._idle)

    async def acquire(self, *, fresh: bool = False) -> PooledConnection:
        """An open connection: the most recently used idle one, else (or when ``fresh``) a new
        one, connected."""
        while self._idle and not fresh:
            connection = self._idle.pop()
            if connection.idle_timer is not None:
                connection.idle_timer.cancel()
                connection.idle_timer = None
            if connection.client.is_connected:
                return connection
            connection.client.close()  # the server closed it while idle
        client = self._connect()
        await client.connect()
        return PooledConnection(client)

    def release(self, connection: PooledConnection) -> None:
        """Give back a connection whose last message was accepted (it carried one more)."""
        connection.messages += 1
        if (
            self._closed
            or connection.messages >= MAX_MESSAGES
            or len(self._idle) >= self._max_idle
            or not connection.client.is_connected
        ):
            self._quit_later(connection)
            return
        connection.idle_timer = asyncio.get_running_loop().call_later(
            self._idle_s, self._expire, connection
        )
        self._idle.append(connection)

    def discard(self, connection: PooledConnection) -> None:
        """Drop a connection after a failure: its state is unknown, it is never reused."""
        connection.client.close()

    def close_idle(self) -> None:
        """Close the idle connections (the server dropped one: the others are as old)."""
        idle, self._idle = self._idle, []
        for connection in idle:
            if connection.idle_timer is not None:
                connection.idle_timer.cancel()
            self._quit_later(connection)

    def _expire(self, connection: PooledConnection) -> None:
        with contextlib.suppress(ValueError):
            self._idle.remove(connection)
            connection.idle_timer = None
            self._quit_later(connection)

    def _quit_later(self, connection: PooledConnection) -> None:
        task = asyncio.get_running_loop().create_task(_quit(connection.client))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        """Close every idle connection (QUIT) and wait for those being closed."""
        self._closed = True
        self.close_idle()
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


async def _quit(client: aiosmtplib.SMTP) -> None:
    # A failed goodbye changes nothing: the socket is closed either way.
    with contextlib.suppress(Exception):
        if client.is_connected:
            await client.quit(timeout=_QUIT_TIMEOUT_S)
    client.close()
