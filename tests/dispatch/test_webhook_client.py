"""The worker's webhook client on the wire: connections kept alive and reused, the work a
delivery costs, timeouts, a connection the receiver closed, TLS. The receiver is a bare
HTTP/1.1 server on loopback that counts the connections it accepts."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dispatch.settings import DispatchSettings
from dispatch.webhooks.delivery import Result, WebhookSender, webhook_http_client
from dispatch.webhooks.destinations import webhook_client
from dispatch.webhooks.handoff import Job
from shared.db import create_engine
from shared.db.session import make_session_factory
from shared.outbox import Outbox, event_source
from tests.support.clock import Clock

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
SETTINGS = DispatchSettings(webhook_allowed_networks=LOOPBACK)
Handler = Callable[["Server", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Server:
    """Requests and accepted connections of a loopback HTTP/1.1 server."""

    port: int = 0
    connections: int = 0
    requests: list[dict[str, str]] = field(default_factory=list)

    async def request(self, reader: asyncio.StreamReader) -> dict[str, str] | None:
        """The next request's headers (its body read), None at the end of the stream."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        lines = head.decode("latin-1").split("\r\n")[1:]
        headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
        await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append(headers)
        return headers


async def answer_204(server: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    while await server.request(reader) is not None:
        w.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    w.close()


@asynccontextmanager
async def serving(
    handler: Handler = answer_204, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[Server]:
    server = Server()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.connections += 1
        try:
            await handler(server, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            writer.close()

    listening = await asyncio.start_server(accept, "127.0.0.1", 0, ssl=ssl_context)
    server.port = listening.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listening.close()


def sender(client: Any, tmp_path: Path, clock: Clock, **values: Any) -> WebhookSender:
    """A sender of the worker's kind (``_deliver`` needs no database)."""
    settings = DispatchSettings(webhook_allowed_networks=LOOPBACK, **values)
    factory = make_session_factory(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"))
    outbox = Outbox(None, event_source("dispatch"))  # type: ignore[arg-type]  # not used
    return WebhookSender(factory, settings, client, outbox=outbox, clock=clock)


def job(url: str, n: int = 0) -> Job:
    body = '{"type":"assignment.offered","data":{}}'
    return Job(f"msg_{n}", "seller", "assignment.offered", body, url, SECRET, "00-ab-cd-01")


async def test_deliveries_to_one_endpoint_reuse_one_connection_and_stay_lean(
    tmp_path: Path, clock: Clock
) -> None:
    """Keep-alive: one TCP connection for every delivery to one endpoint. And the work of a
    delivery, in Python calls (this process: client and the test's server): the worker's
    client goes straight through its connection pool on asyncio's transports; through httpx's
    request machinery on anyio's streams it was about 1,500 calls a delivery."""
    async with serving() as server, webhook_http_client(SETTINGS) as client:
        webhooks = sender(client, tmp_path, clock)
        url = f"http://127.0.0.1:{server.port}/hook"
        for n in range(3):  # warm-up: the connection, caches
            assert (await webhooks._deliver(job(url, n))).outcome == "delivered"
        calls = 0

        def count(frame: FrameType, event: str, arg: Any) -> None:
            nonlocal calls
            calls += event == "call"

        sys.setprofile(count)
        try:
            results = [await webhooks._deliver(job(url, n)) for n in range(3, 23)]
        finally:
            sys.setprofile(None)
    assert {result.outcome for result in results} == {"delivered"}
    assert server.connections == 1
    assert len(server.requests) == 23
    headers = server.requests[-1]
    assert headers["webhook-id"] == "msg_22"
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["traceparent"] == "00-ab-cd-01"
    assert headers["host"] == f"127.0.0.1:{server.port}"
    assert calls / 20 < 1_100, f"{calls / 20:.0f} Python calls a delivery"


async def test_a_receiver_that_does_not_answer_is_a_timeout(tmp_path: Path, clock: Clock) -> None:
    async def silent(server: Server, reader: asyncio.StreamReader, _: asyncio.StreamWriter) -> None:
        await server.request(reader)
        await asyncio.sleep(10)

    destinations = SETTINGS.webhook_destinations()
    async with serving(silent) as server, webhook_client(destinations, timeout=0.3) as client:
        webhooks = sender(client, tmp_path, clock, webhook_timeout_s=0.3)
        result = await webhooks._deliver(job(f"http://127.0.0.1:{server.port}/hook"))
    assert (result.outcome, result.status_code) == ("timeout", None)


async def test_a_receiver_that_hangs_up_is_a_network_error(tmp_path: Path, clock: Clock) -> None:
    async def rude(server: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await server.request(reader)
        w.close()

    async with serving(rude) as server, webhook_http_client(SETTINGS) as client:
        url = f"http://127.0.0.1:{server.port}/hook"
        result = await sender(client, tmp_path, clock)._deliver(job(url))
    assert result.outcome == "network_error"


async def test_a_connection_the_receiver_closed_while_idle_is_not_reused(
    tmp_path: Path, clock: Clock
) -> None:
    async def once(server: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await server.request(reader)
        w.write(
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 2\r\n\r\n{}"
        )
        await w.drain()
        w.close()

    async with serving(once) as server, webhook_http_client(SETTINGS) as client:
        webhooks = sender(client, tmp_path, clock)
        url = f"http://127.0.0.1:{server.port}/hook"
        first = await webhooks._deliver(job(url, 1))
        await asyncio.sleep(0.1)  # the receiver's end of stream reaches the client
        second = await webhooks._deliver(job(url, 2))
    expected = Result(503, "throttled", first.latency_ms, 7.0)
    assert first == expected
    assert (second.outcome, second.retry_after_s) == ("throttled", 7.0)
    assert server.connections == 2


def _certificate(name: str, directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_https_checks_the_certificate_against_the_url_host_and_reuses_the_connection(
    tmp_path: Path, clock: Clock
) -> None:
    cert, key = _certificate("hooks.test", tmp_path)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))

    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]  # both names: the connection goes to the checked address

    policy = SETTINGS.webhook_destinations()
    tls = webhook_client(policy, timeout=5, resolver=resolver, ssl_context=trusting)
    async with serving(ssl_context=server_side) as server, tls as client:
        webhooks = sender(client, tmp_path, clock)
        good = [
            await webhooks._deliver(job(f"https://hooks.test:{server.port}/hook", n))
            for n in range(3)
        ]
        wrong_name = await webhooks._deliver(job(f"https://other.test:{server.port}/hook"))
    assert [result.outcome for result in good] == ["delivered"] * 3
    assert wrong_name.outcome == "network_error"  # the certificate is not for other.test
    assert len(server.requests) == 3
    assert server.requests[0]["host"] == f"hooks.test:{server.port}"
