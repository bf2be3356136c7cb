"""Whether an API process may trust what it cached about tokens and people: a *generation* that
moves whenever ``api_token`` or ``access_person`` changed in the service's database, from any
process. The token cache (``shared.token_cache``) drops everything when it moves, and caches
nothing while the watch cannot vouch (``generation()`` is None): a revoked token or a
deactivated person is refused by the next request, not after a cache period.

- PostgreSQL: ``LISTEN vo_access`` on a connection of the process's own; a statement-level
  trigger on both tables (each service's migration ``people_and_tokens``) notifies inside the
  writer's transaction, delivered at its commit. Connected lazily at the first request; while
  the connection is down (not yet up, database restart) nothing is cached, every request reads
  the database. The same idea as the workers' wake-ups (LISTEN, reconnect, "everything may have
  changed" on reconnection), on a channel of its own.
- SQLite (``make run``): ``PRAGMA data_version`` on a connection of its own at every look
  (microseconds, no thread hop); when the file changed, the ``access_revision`` counter (moved by
  triggers) says whether tokens or people did.
- A database in memory: nothing can watch it; nothing is cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Protocol

import asyncpg
import structlog
from sqlalchemy.engine import make_url

from shared.redact import safe_error_text

log = structlog.get_logger(__name__)

CHANNEL = "vo_access"
_HEALTH_CHECK_S = 30.0  # a LISTEN connection silently gone is found within this
_MAX_RECONNECT_PAUSE_S = 5.0


class AccessWatch(Protocol):
    def generation(self) -> int | None:
        """The current generation; None when the watch cannot vouch for anything now."""
        ...

    def bump(self) -> None:
        """This process changed tokens or people itself: what it cached is stale."""
        ...

    async def close(self) -> None: ...


class Unwatched:
    """A database nothing can watch (in memory): never vouches."""

    def generation(self) -> int | None:
        return None

    def bump(self) -> None:
        pass

    async def close(self) -> None:
        pass


class SqliteAccessWatch:
    """Synchronous and cheap: called from the event loop at every look."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None
        self._data_version: int | None = None
        self._revision: int | None = None
        self._generation = 0

    def generation(self) -> int | None:
        try:
            return self._look()
        except sqlite3.Error:
            # Busy, not migrated yet, or the file is being replaced: vouch for nothing now.
            self._reset()
            return None

    def _look(self) -> int | None:
        if self._connection is None:
            # timeout=0: never block the event loop on a lock.
            self._connection = sqlite3.connect(self._path, timeout=0, isolation_level=None)
        # fetchall: every statement runs to its end, no read snapshot is left open (it would
        # hold back the checkpoints that erasure runs).
        [(version,)] = self._connection.execute("PRAGMA data_version").fetchall()
        if version != self._data_version:
            rows = self._connection.execute(
                "SELECT revision FROM access_revision WHERE id = 1"
            ).fetchall()
            if not rows:
                self._reset()
                return None
            if rows[0][0] != self._revision:
                self._revision = rows[0][0]
                self._generation += 1
            self._data_version = version
        return self._generation

    def bump(self) -> None:
        self._generation += 1

    def _reset(self) -> None:
        self._generation += 1
        self._data_version = None
        self._revision = None
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(sqlite3.Error):
                connection.close()

    async def close(self) -> None:
        self._reset()


class PostgresAccessWatch:
    """A task of the API process keeps ``LISTEN vo_access`` open (started at the first look)."""

    def __init__(self, url: str, *, application_name: str = "vo-leads.access") -> None:
        self._dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._application_name = application_name
        self._generation = 0
        self._listening = False
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.connections = 0  # LISTEN connections made so far (reconnections included)
        self.notifications = 0

    def generation(self) -> int | None:
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="access-watch")
        return self._generation if self._listening else None

    def bump(self) -> None:
        self._generation += 1

    @property
    def listening(self) -> bool:
        return self._listening

    async def _run(self) -> None:
        pause = 0.5
        while not self._closed:
            try:
                connection = await asyncpg.connect(
                    self._dsn,
                    timeout=10,
                    server_settings={"application_name": self._application_name},
                )
            except Exception as exc:
                log.warning("access.watch_connect_failed", error=safe_error_text(exc))
                await asyncio.sleep(pause)
                pause = min(pause * 2, _MAX_RECONNECT_PAUSE_S)
                continue
            try:
                await self._serve(connection)
                pause = 0.5
            except Exception as exc:
                log.warning("access.watch_lost", error=safe_error_text(exc))
            finally:
                self._stop_vouching()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.close(), 5)
            if not self._closed:
                await asyncio.sleep(pause)
                pause = min(pause * 2, _MAX_RECONNECT_PAUSE_S)

    async def _serve(self, connection: asyncpg.Connection) -> None:
        closed = asyncio.Event()
        connection.add_termination_listener(lambda _connection: closed.set())

        def on_notify(_connection: object, _pid: int, _channel: str, _payload: object) -> None:
            self.notifications += 1
            self._generation += 1

        await connection.add_listener(CHANNEL, on_notify)
        self.connections += 1
        # Whatever changed while nobody listened: nothing cached before now is trusted.
        self._generation += 1
        self._listening = True
        while not closed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closed.wait(), _HEALTH_CHECK_S)
            if not closed.is_set():
                await connection.fetchval("SELECT 1", timeout=10)
        raise ConnectionError("the LISTEN connection was closed")

    def _stop_vouching(self) -> None:
        self._listening = False
        self._generation += 1

    async def close(self) -> None:
        self._closed = True
        self._stop_vouching()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None


def access_watch_for(url: str, *, application_name: str = "vo-leads.access") -> AccessWatch:
    """The watch of a service's database URL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return PostgresAccessWatch(url, application_name=application_name)
    database = parsed.database
    if parsed.get_backend_name() == "sqlite" and database not in (None, "", ":memory:"):
        return SqliteAccessWatch(Path(str(database)))
    return Unwatched()
