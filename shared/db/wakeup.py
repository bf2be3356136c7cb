"""Wake on work: a loop that waits for rows to handle (the outbox relay, dispatch's webhook sender
and timers) sleeps until a commit says there are some, and polls only as a slow fallback.

A *channel* is the name of a table whose new rows are work (``outbox_event``,
``webhook_delivery``, ``timer``).

- In the process: a unit of work that wrote such rows calls ``wake_after_commit(session,
  channel)`` (``shared.db.session``); once it has committed, the channel's ``Signal`` of the
  session factory's ``Wakeups`` is notified. No database round trip.
- Across processes, ``ChangeListener`` (one task per worker):
  PostgreSQL: ``LISTEN`` on one connection of its own; a statement-level ``AFTER INSERT`` trigger
  on each table runs ``pg_notify(<table>, '')`` inside the writer's statement (each service's
  migration ``notify_on_work``), so the writer pays no extra round trip. Notifications sent by
  this process's own connections are ignored: its commit woke its loops already. Hence the rule:
  **every unit of work that inserts into a watched table calls ``wake_after_commit``**. The
  connection is reconnected after a database restart, and every channel is notified on
  (re)connection: what was committed meanwhile is not missed.
  SQLite (the embedded default): ``PRAGMA data_version`` on a connection of its own, read every
  few tens of milliseconds (microseconds each, no thread hop); when it moved, the largest rowid of
  each watched table says which ones got new rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import ClassVar

import asyncpg
import structlog
from sqlalchemy.engine import URL, make_url

from shared.aio import sleep_or_stop
from shared.redact import safe_error_text

log = structlog.get_logger(__name__)

OUTBOX = "outbox_event"
_HEALTH_CHECK_S = 30.0  # a LISTEN connection silently gone is found within this
_MAX_RECONNECT_PAUSE_S = 5.0


class Signal:
    """Broadcast wake-up of the tasks of one process waiting for a channel. A waiter reads
    ``generation`` before looking for work and waits past it: a notification that came while
    it looked is never lost.

    A wait is one future and one timer: ``notify`` resolves the futures of the waits, the timer
    its own, and ``stop`` those waiting with it (``_StopWatch``: one task per stop event, not per
    wait). A wait used to run two tasks (the channel's event, ``stop``) under an ``asyncio.wait``
    and cancel them after, at every wake of a relay or a sender (``benchmarks.outbox_relay_cpu``:
    ~30 us of CPU per event at one event per wake)."""

    def __init__(self) -> None:
        self._generation = 0
        self._waiters: set[asyncio.Future[bool]] = set()

    @property
    def generation(self) -> int:
        return self._generation

    def notify(self) -> None:
        self._generation += 1
        if self._waiters:
            waiters, self._waiters = self._waiters, set()
            for waiter in waiters:
                _resolve(waiter, True)

    async def wait(self, seen: int, timeout_s: float, stop: asyncio.Event | None = None) -> bool:
        """Until notified after generation ``seen`` (True), ``timeout_s`` passed or ``stop``
        is set (False)."""
        if self._generation != seen:
            return True
        if stop is not None and stop.is_set():
            return False
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters.add(waiter)
        timer = loop.call_later(timeout_s, _resolve, waiter, False)
        watch = _StopWatch.of(stop) if stop is not None else None
        if watch is not None:
            watch.waiters.add(waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiters.discard(waiter)
            if watch is not None:
                watch.waiters.discard(waiter)


def _resolve(waiter: asyncio.Future[bool], value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)


class _StopWatch:
    """The waits of a stop event, ended (False) once it is set: one task per stop event, for as
    long as the event is not set (a worker's loops share one). The task forgets its watch when
    it ends: once the event is set, or cancelled with the other tasks of a closing loop."""

    _watches: ClassVar[dict[asyncio.Event, _StopWatch]] = {}

    def __init__(self, stop: asyncio.Event) -> None:
        self.waiters: set[asyncio.Future[bool]] = set()
        self.task = asyncio.get_running_loop().create_task(self._watch(stop))

    @classmethod
    def of(cls, stop: asyncio.Event) -> _StopWatch:
        running = asyncio.get_running_loop()
        watch = cls._watches.get(stop)
        if watch is None or watch.task.done() or watch.task.get_loop() is not running:
            watch = cls._watches[stop] = cls(stop)
        return watch

    async def _watch(self, stop: asyncio.Event) -> None:
        try:
            await stop.wait()
            for waiter in self.waiters:
                _resolve(waiter, False)
        finally:
            if self._watches.get(stop) is self:
                del self._watches[stop]


class Wakeups:
    """The signals of one database (one per session factory: ``shared.db.session``).

    ``own_backends``: the PostgreSQL backend pids of this process's pooled connections to it.
    Their commits already woke this process's loops (``wake_after_commit``), so ``ChangeListener``
    ignores their notifications: each would cost a second, empty pass of the loop."""

    def __init__(self) -> None:
        self._signals: dict[str, Signal] = {}
        self.own_backends: set[int] = set()

    def signal(self, channel: str) -> Signal:
        """The channel's signal; asking for it is what makes ``ChangeListener`` watch it."""
        found = self._signals.get(channel)
        if found is None:
            found = self._signals[channel] = Signal()
        return found

    @property
    def channels(self) -> list[str]:
        return sorted(self._signals)

    def notify(self, channels: Iterable[str]) -> None:
        for channel in channels:
            signal = self._signals.get(channel)
            if signal is not None:
                signal.notify()

    def notify_all(self) -> None:
        self.notify(list(self._signals))


class SqliteWatcher:
    """Which watched tables of a SQLite file got new rows since the last look, from any
    connection of any process. Synchronous and cheap (a pragma, then one indexed ``max`` per
    table only when the file changed): called from the event loop."""

    def __init__(self, path: Path, tables: Sequence[str]) -> None:
        self._path = path
        self._tables = list(tables)
        self._connection: sqlite3.Connection | None = None
        self._version: int | None = None
        self._tops: dict[str, int | None] = {}

    def changed(self) -> list[str]:
        try:
            return self._changed()
        except sqlite3.Error:
            # Busy, or the file is being replaced: look again from scratch, and say "maybe".
            self.close()
            return list(self._tables)

    def _changed(self) -> list[str]:
        if self._connection is None:
            # timeout=0: never block the event loop on a lock (busy: "maybe changed").
            self._connection = sqlite3.connect(self._path, timeout=0, isolation_level=None)
        (version,) = self._connection.execute("PRAGMA data_version").fetchone()
        if version == self._version:
            return []
        self._version = version
        changed = []
        for table in self._tables:
            (top,) = self._connection.execute(f'SELECT max(rowid) FROM "{table}"').fetchone()
            if top is not None and top != self._tops.get(table):
                changed.append(table)
            self._tops[table] = top
        return changed

    def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            self._version = None
            connection.close()


def sqlite_path(url: URL) -> Path | None:
    database = url.database
    if url.get_backend_name() != "sqlite" or database in (None, "", ":memory:"):
        return None
    return Path(str(database))


class ChangeListener:
    """Notifies ``wakeups`` when another connection (another process, or this one) committed
    rows to a watched table. A worker runs one (``run`` until stop) beside its loops."""

    name = "wakeups"

    def __init__(
        self,
        url: str,
        wakeups: Wakeups,
        *,
        application_name: str = "vo-leads.listen",
        sqlite_interval_s: float = 0.05,
    ) -> None:
        self._url = make_url(url)
        self._wakeups = wakeups
        self._application_name = application_name
        self._sqlite_interval_s = sqlite_interval_s
        self.listening = asyncio.Event()  # set while notifications are being received
        self.connections = 0  # LISTEN connections made so far (reconnections included)

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` (a supervisor restarts a loop that returns)."""
        channels = self._wakeups.channels
        path = sqlite_path(self._url)
        if channels and self._url.get_backend_name() == "postgresql":
            await self._listen(stop, channels)
        elif channels and path is not None:
            await self._watch(stop, SqliteWatcher(path, channels))
        else:
            await stop.wait()  # nothing to watch (an in-memory database)

    async def _watch(self, stop: asyncio.Event, watcher: SqliteWatcher) -> None:
        self.listening.set()
        try:
            while not stop.is_set():
                changed = watcher.changed()
                if changed:
                    self._wakeups.notify(changed)
                # A plain sleep (no task per look): stop is seen within one interval.
                await asyncio.sleep(self._sqlite_interval_s)
        finally:
            self.listening.clear()
            watcher.close()

    async def _listen(self, stop: asyncio.Event, channels: Sequence[str]) -> None:
        dsn = self._url.set(drivername="postgresql").render_as_string(hide_password=False)
        pause = 0.5
        while not stop.is_set():
            try:
                connection = await asyncpg.connect(
                    dsn, timeout=10, server_settings={"application_name": self._application_name}
                )
            except Exception as exc:
                log.warning("wakeups.connect_failed", error=safe_error_text(exc))
                await sleep_or_stop(stop, pause)
                pause = min(pause * 2, _MAX_RECONNECT_PAUSE_S)
                continue
            try:
                await self._serve(connection, stop, channels)
                pause = 0.5
            except Exception as exc:
                log.warning("wakeups.listen_lost", error=safe_error_text(exc))
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.close(), 5)
            await sleep_or_stop(stop, pause)
            pause = min(pause * 2, _MAX_RECONNECT_PAUSE_S)

    async def _serve(
        self, connection: asyncpg.Connection, stop: asyncio.Event, channels: Sequence[str]
    ) -> None:
        closed = asyncio.Event()
        connection.add_termination_listener(lambda _connection: closed.set())

        def on_notify(_connection: object, pid: int, channel: str, _payload: object) -> None:
            if pid not in self._wakeups.own_backends:  # ours woke us at commit already
                self._wakeups.notify((channel,))

        for channel in channels:
            await connection.add_listener(channel, on_notify)
        self.connections += 1
        self.listening.set()
        self._wakeups.notify_all()  # whatever was committed while nobody listened
        ended = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(closed.wait())]
        try:
            while True:
                done, _ = await asyncio.wait(
                    ended, timeout=_HEALTH_CHECK_S, return_when=asyncio.FIRST_COMPLETED
                )
                if done:
                    break
                await connection.fetchval("SELECT 1", timeout=10)
        finally:
            for task in ended:
                task.cancel()
        if closed.is_set() and not stop.is_set():
            raise ConnectionError("the LISTEN connection was closed")
