"""Is this error an outage of the database or the bus (try the same thing again later), or a fault
of the work itself (a bug, a bad message: retrying it unchanged cannot help)?

One answer for the HTTP layer (503 with ``Retry-After`` instead of 500) and for consumers (rewind
and retry later instead of dead-lettering). Only connection-level failures are outages: a
``FileNotFoundError`` raised by a handler is an ``OSError`` too, but no outage.

A third kind, *contention* (``is_contention``): PostgreSQL gave up the transaction because of a
concurrent one (a serialization failure, or the victim of a deadlock). The database is up and the
work is sound: the same work in a new transaction succeeds. HTTP answers 503 with a short
``Retry-After``; a consumer retries it, and never dead-letters for it.
"""

from __future__ import annotations

import errno
import socket
import sqlite3
from collections.abc import Iterator

import asyncpg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from shared.bus.protocol import BusUnavailable

# Socket errors of a peer that is down, restarting or unreachable.
_CONNECTION_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.EHOSTDOWN,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.ENOTCONN,
        errno.ESHUTDOWN,
        errno.EADDRNOTAVAIL,
    }
)
# PostgreSQL SQLSTATEs of a server that is gone, starting, stopping or full: class 08
# (connection exception), 57P01-57P05 (admin/crash shutdown, cannot connect now, database
# dropped, idle session timeout), class 53 (insufficient resources: too many connections…).
_POSTGRES_OUTAGE_PREFIXES = ("08", "53", "57P")
# serialization_failure, deadlock_detected: the transaction lost to a concurrent one.
_POSTGRES_CONTENTION = frozenset({"40001", "40P01"})
# SQLite primary result codes of a file that is busy, locked, unreadable or full.
_SQLITE_OUTAGE_CODES = frozenset({5, 6, 7, 8, 10, 13, 14, 15})  # BUSY … PROTOCOL
_MAX_DEPTH = 6


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` says the database or the bus is unreachable, restarting, or dropped the
    connection; False for anything the work itself caused."""
    if isinstance(exc, BaseExceptionGroup):
        return all(is_outage(inner) for inner in exc.exceptions)
    for error in _chain(exc):
        verdict = _verdict(error)
        if verdict is not None:
            return verdict
    return False


def is_contention(exc: BaseException) -> bool:
    """True when PostgreSQL rolled the transaction back for a concurrent one (SQLSTATE 40001
    serialization failure, 40P01 deadlock victim): retry the same work in a new transaction."""
    if isinstance(exc, BaseExceptionGroup):
        return all(is_contention(inner) for inner in exc.exceptions)
    for error in _chain(exc):
        origins = _chain(error.orig) if isinstance(error, DBAPIError) and error.orig else [error]
        for origin in origins:
            if isinstance(origin, asyncpg.PostgresError):
                return getattr(origin, "sqlstate", None) in _POSTGRES_CONTENTION
    return False


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what caused it: the explicit cause (a DBAPI adapter wraps the driver's own
    error), or the error being handled when the database machinery failed again (a rollback on
    a dead connection)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < _MAX_DEPTH:
        seen.add(id(current))
        yield current
        follows_context = type(current).__module__.startswith(("sqlalchemy", "asyncpg"))
        current = current.__cause__ or (current.__context__ if follows_context else None)


def _verdict(error: BaseException) -> bool | None:
    """True (outage), False (fault of the work), None (this error alone does not tell)."""
    if isinstance(error, BusUnavailable):
        return True
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        if error.orig is not None:
            for driver_error in _chain(error.orig):
                verdict = _driver_verdict(driver_error)
                if verdict is not None:
                    return verdict
        # Without the driver's word, the DBAPI class decides: connection-level by definition.
        return isinstance(error, (OperationalError, InterfaceError))
    return _driver_verdict(error)


def _driver_verdict(error: BaseException) -> bool | None:
    if isinstance(error, (ConnectionError, socket.gaierror, TimeoutError)):
        return True  # refused, reset, broken pipe; name resolution; connect timeout
    if isinstance(error, OSError):
        return error.errno in _CONNECTION_ERRNOS  # not a missing file, a permission…
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        return isinstance(code, int) and code & 0xFF in _SQLITE_OUTAGE_CODES
    if isinstance(error, asyncpg.PostgresError):
        sqlstate = getattr(error, "sqlstate", None) or ""
        return sqlstate.startswith(_POSTGRES_OUTAGE_PREFIXES)
    if isinstance(error, asyncpg.InternalClientError):
        return True  # the protocol state broke with the connection
    if isinstance(error, asyncpg.InterfaceError):
        # "connection is closed", "another operation is in progress"; not a bad argument
        # (asyncpg's DataError and ClientConfigurationError are ValueErrors).
        return not isinstance(error, ValueError)
    return None
