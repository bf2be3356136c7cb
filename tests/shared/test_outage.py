"""Outage or fault (issue 11, item 7): only connection-level failures of the database driver or
the bus are retried without end; a handler's own ``OSError`` (a missing file…) is the message's
fault and goes to the dead-letter queue after its bounded retries."""

from __future__ import annotations

import errno
import socket
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.bus.protocol import BusUnavailable, Record
from shared.consumer import EventConsumer, Handler
from shared.events import Envelope, Topics
from shared.metrics import ServiceMetrics
from shared.outage import is_outage
from tests.support.messaging import Harness, MessagingSettings, infra, messaging_harness


def sqlite_error(statement: str) -> sqlite3.Error:
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute(statement)
    except sqlite3.Error as exc:
        return exc
    finally:
        connection.close()
    raise AssertionError("the statement did not fail")


def locked_sqlite_error(tmp_path: Path) -> sqlite3.Error:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(path, timeout=0)
    try:
        other.execute("SELECT * FROM t")
    except sqlite3.Error as exc:
        return exc
    finally:
        other.close()
        holder.close()
    raise AssertionError("the database was not locked")


def wrapped(kind: type[DBAPIError], driver_error: BaseException) -> DBAPIError:
    return kind("SELECT 1", None, driver_error)


def driver(exc: BaseException) -> BaseException:
    """As SQLAlchemy's asyncpg adapter raises it: its own class, the driver's error as cause."""
    adapted = Exception(str(exc))
    adapted.__cause__ = exc
    return adapted


OUTAGES: list[tuple[str, object]] = [
    ("bus unavailable", BusUnavailable("kafka unreachable")),
    ("connection refused", ConnectionRefusedError(errno.ECONNREFUSED, "refused")),
    ("connection reset (plain OSError)", OSError(errno.ECONNRESET, "reset")),
    ("host unreachable", OSError(errno.EHOSTUNREACH, "no route")),
    ("name resolution", socket.gaierror(-2, "Name or service not known")),
    ("connect timeout", TimeoutError()),
    (
        "postgres admin shutdown",
        wrapped(DBAPIError, driver(asyncpg.exceptions.AdminShutdownError("terminating"))),
    ),
    (
        "postgres cannot connect now",
        wrapped(DBAPIError, driver(asyncpg.exceptions.CannotConnectNowError("starting up"))),
    ),
    (
        "postgres connection lost mid-query",
        wrapped(DBAPIError, driver(asyncpg.exceptions.ConnectionDoesNotExistError("closed"))),
    ),
    (
        "postgres too many connections",
        wrapped(DBAPIError, driver(asyncpg.exceptions.TooManyConnectionsError("too many"))),
    ),
    (
        "asyncpg another operation in progress",
        wrapped(
            InterfaceError,
            driver(
                asyncpg.InterfaceError("cannot perform operation: another operation is in progress")
            ),
        ),
    ),
    (
        "asyncpg internal client error",
        wrapped(DBAPIError, driver(asyncpg.InternalClientError("protocol state"))),
    ),
    ("raw asyncpg connection closed", asyncpg.InterfaceError("connection is closed")),
    ("an exception group of outages", ExceptionGroup("both", [TimeoutError(), OSError(104, "")])),
]

FAULTS: list[tuple[str, object]] = [
    ("missing file", FileNotFoundError(errno.ENOENT, "no such file")),
    ("permission", PermissionError(errno.EACCES, "denied")),
    ("is a directory", IsADirectoryError(errno.EISDIR, "directory")),
    ("plain OSError without errno", OSError("something")),
    ("value error", ValueError("bad value")),
    ("key error", KeyError("missing")),
    (
        "postgres unique violation",
        wrapped(IntegrityError, driver(asyncpg.exceptions.UniqueViolationError("duplicate"))),
    ),
    (
        "postgres NUL in text",
        wrapped(DBAPIError, driver(asyncpg.exceptions.CharacterNotInRepertoireError("0x00"))),
    ),
    (
        "asyncpg bad argument",
        wrapped(InterfaceError, driver(asyncpg.exceptions.DataError("invalid input"))),
    ),
    ("sqlite no such table", wrapped(OperationalError, sqlite_error("SELECT * FROM nope"))),
    ("sqlite syntax error", wrapped(OperationalError, sqlite_error("SELEKT 1"))),
    ("an exception group with a fault", ExceptionGroup("mixed", [TimeoutError(), KeyError()])),
]


@pytest.mark.parametrize(("label", "error"), OUTAGES, ids=[label for label, _ in OUTAGES])
def test_connection_level_failures_are_outages(label: str, error: BaseException) -> None:
    assert is_outage(error), label


@pytest.mark.parametrize(("label", "error"), FAULTS, ids=[label for label, _ in FAULTS])
def test_other_errors_are_faults_of_the_work(label: str, error: BaseException) -> None:
    assert not is_outage(error), label


def test_a_locked_sqlite_database_is_an_outage(tmp_path: Path) -> None:
    error = locked_sqlite_error(tmp_path)
    assert is_outage(wrapped(OperationalError, error))


def test_an_invalidated_connection_is_an_outage() -> None:
    error = DBAPIError("SELECT 1", None, Exception("gone"), connection_invalidated=True)
    assert is_outage(error)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    settings = MessagingSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        bus="embedded",
        embedded_bus_path=tmp_path / "bus.db",
    )
    async with messaging_harness(settings) as built:
        yield built


def consumer_raising(harness: Harness, error: BaseException) -> EventConsumer:
    async def handler(session: AsyncSession, envelope: Envelope) -> None:
        raise error

    handlers: dict[str, Handler] = {"lead.received.v1": handler}
    return EventConsumer(
        service="messaging-test",
        name="test.outage",
        bus=harness.bus,
        topics=[Topics.LEADS],
        handlers=handlers,
        session_factory=harness.sessions,
        infra=infra,
        metrics=ServiceMetrics("messaging-test"),
        max_attempts=3,
        retry_backoff_s=0.0,
    )


async def one_record(harness: Harness) -> list[Record]:
    envelope = Envelope(source="/t", type="lead.received.v1", subject="lead-1", data={})
    await harness.bus.publish(
        Topics.LEADS, key=b"lead-1", value=envelope.to_value(), headers=envelope.to_headers()
    )
    reader = harness.bus.consumer(group_id="test.outage", topics=[Topics.LEADS])
    await reader.start()
    try:
        return list(await reader.poll(timeout_s=2.0, max_records=10))
    finally:
        await reader.stop()


async def test_a_handler_file_not_found_is_dead_lettered(harness: Harness) -> None:
    records = await one_record(harness)
    consumer = consumer_raising(harness, FileNotFoundError(errno.ENOENT, "template.txt"))
    reader = harness.bus.consumer(group_id="test.outage", topics=[Topics.LEADS])
    await reader.start()
    try:
        assert await consumer.process_batch(reader, records)
    finally:
        await reader.stop()
    assert await harness.count(infra.dead_letter) == 1


async def test_a_refused_connection_is_retried_later_not_dead_lettered(harness: Harness) -> None:
    records = await one_record(harness)
    consumer = consumer_raising(harness, ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
    reader = harness.bus.consumer(group_id="test.outage", topics=[Topics.LEADS])
    await reader.start()
    try:
        assert not await consumer.process_batch(reader, records)
    finally:
        await reader.stop()
    assert await harness.count(infra.dead_letter) == 0
