"""Where webhooks may go: public addresses only, unless a network is allowed by configuration.

A seller's ``webhook_url`` is typed by an admin, and the worker POSTs signed messages there from
inside the deployment's network: pointed at ``169.254.169.254`` (a cloud's metadata service),
``127.0.0.1`` or a private address, it would make dispatch reach what only the deployment should
(server-side request forgery). So:

- at registration (``POST``/``PATCH /v1/sellers``): ``http``/``https`` only, no credentials in
  the URL, and a host written as an address must be allowed (``url_refusal``);
- at every delivery, the host is resolved, **every** address it resolves to is checked, and the
  connection goes to one of those checked addresses (``GuardedBackend``, the network layer of
  the worker's HTTP client): a name that resolves to a public address at registration and to
  ``127.0.0.1`` later (DNS rebinding) is refused there, and nothing resolves the name again
  between the check and the connection.

Allowed: a global unicast address (``ipaddress``'s ``is_global``, not multicast, and the IPv4
address an IPv6 one embeds — mapped, NAT64, 6to4, Teredo — allowed too), or any address of
``DISPATCH_WEBHOOK_ALLOWED_NETWORKS`` (tests and ``make run`` allow loopback, where their
receivers listen).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from dispatch.webhooks.streams import AsyncioBackend

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

_SCHEMES = frozenset({"http", "https"})
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class DestinationRefused(Exception):
    """The webhook's destination is not allowed; ``reason`` names the kind of address (never
    the address: it may come from the seller's own URL)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class DestinationPolicy:
    allowed_networks: tuple[IPNetwork, ...] = ()

    def address_refusal(self, address: IPAddress) -> str | None:
        """None when webhooks may be posted to ``address``; else the kind of address it is."""
        if any(address in network for network in self.allowed_networks):
            return None
        embedded = _embedded_ipv4(address)
        if embedded is not None:  # where the packets go: judged as that IPv4 address
            return self.address_refusal(embedded)
        return _kind(address)

    def url_refusal(self, url: str) -> str | None:
        """What is wrong with ``url`` as a webhook endpoint, seen without resolving its name:
        a scheme other than http(s), credentials, a host that is a refused address or a
        ``localhost`` name (always loopback, RFC 6761). None when it may be registered (a name
        is checked again, resolved, at each delivery)."""
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            return "not a valid URL"
        if parts.scheme.lower() not in _SCHEMES:
            return "only http and https URLs are accepted"
        if parts.username is not None or parts.password is not None:
            return "credentials are not accepted in the URL (the messages are signed)"
        if not host:
            return "the URL has no host"
        name = host.rstrip(".").lower()
        if name == "localhost" or name.endswith(".localhost"):
            refusals = [self.address_refusal(ipaddress.ip_address(a)) for a in _LOOPBACKS]
            return next((f"{why} address" for why in refusals if why), None)
        address = _literal_address(host)
        if address is None:
            return None  # a name: checked when it is resolved, at each delivery
        refusal = self.address_refusal(address)
        return None if refusal is None else f"{refusal} address"


_LOOPBACKS = ("127.0.0.1", "::1")
_NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]+")


def _literal_address(host: str) -> IPAddress | None:
    """The address a host written as one stands for, in any form a resolver takes
    (``127.0.0.1``, ``2130706433``, ``0x7f.1``, ``::1``); None for a name."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(host) is None:
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _kind(address: IPAddress) -> str | None:
    """The kind of a non-public address, None for a public unicast one."""
    if address.is_loopback:
        return "a loopback"
    if address.is_link_local:
        return "a link-local"
    if address.is_unspecified:
        return "an unspecified"
    if address.is_multicast:
        return "a multicast"
    if address.is_private:
        return "a private"
    if not address.is_global:
        return "a reserved"
    return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (the packets may end up there)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to for a TCP connection (an address is itself, without
    a trip to the resolver's thread)."""
    literal = _literal_address(host)
    if literal is not None:
        return [host if "%" in host else str(literal)]  # an IPv6 zone is kept for connecting
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network layer for webhooks: resolve once, check every address, connect to a
    checked one. TLS still verifies the certificate against the URL's host name."""

    def __init__(
        self,
        policy: DestinationPolicy,
        *,
        resolver: Resolver = resolve,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._resolver(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout("name resolution timed out") from exc
        except OSError as exc:  # socket.gaierror: the name does not resolve
            raise httpcore.ConnectError("name resolution failed") from exc
        checked = _checked(self._policy, addresses)
        error: Exception = httpcore.ConnectError("no address")
        for address in checked:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefused("a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _checked(policy: DestinationPolicy, addresses: Sequence[str]) -> list[str]:
    """``addresses`` when every one is allowed; DestinationRefused naming the first refusal."""
    for text in addresses:
        address = _literal_address(text)
        if address is None:
            raise DestinationRefused("not an address")
        refusal = policy.address_refusal(address)
        if refusal is not None:
            raise DestinationRefused(f"{refusal} address")
    return list(addresses)


class WebhookClient(httpx.AsyncClient):
    """The worker's client for webhooks: an ``httpx.AsyncClient`` (any request through it is
    guarded) whose ``post_signed`` sends a webhook straight through its connection pool.

    ``post_signed`` skips what the client adds around a request and a webhook never uses
    (cookies, auth, redirects, event hooks, header merging, a response object): a webhook is
    one POST to one URL with its own headers, and only the status and ``Retry-After`` are read.
    Same pool, same ``GuardedBackend``, the same timeouts and no redirects followed; httpcore's
    errors come out as httpx's (``httpx.TimeoutException``, ``httpx.TransportError``)."""

    def __init__(self, pool: httpcore.AsyncConnectionPool, *, timeout: float, **kwargs: Any):
        super().__init__(timeout=timeout, **kwargs)
        self._webhook_pool = pool

    async def post_signed(
        self, url: str, body: bytes, headers: dict[str, str], *, timeout_s: float
    ) -> tuple[int, str | None]:
        """POST ``body`` to ``url``: the status code and the ``Retry-After`` header (if any)."""
        target = _target(url)
        pairs = [(name.encode(), value.encode()) for name, value in headers.items()]
        phases = ("connect", "read", "write", "pool")
        extensions = {"timeout": dict.fromkeys(phases, timeout_s)}
        try:
            response = await self._webhook_pool.request(
                "POST", target, headers=pairs, content=body, extensions=extensions
            )
        except httpcore.TimeoutException as exc:
            raise httpx.TimeoutException(str(exc)) from exc
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
            raise httpx.TransportError(str(exc)) from exc
        retry_after = next(
            (value for name, value in response.headers if name.lower() == b"retry-after"), None
        )
        return response.status, None if retry_after is None else retry_after.decode("latin-1")


@lru_cache(maxsize=1024)
def _target(url: str) -> httpcore.URL:
    """httpcore's form of a webhook URL, parsed (IDNA, percent-encoding) as httpx would."""
    parsed = httpx.URL(url)
    return httpcore.URL(
        scheme=parsed.raw_scheme,
        host=parsed.raw_host,
        port=parsed.port,
        target=parsed.raw_path,
    )


def webhook_client(
    policy: DestinationPolicy,
    *,
    timeout: float,
    limits: httpx.Limits | None = None,
    resolver: Resolver = resolve,
    ssl_context: ssl.SSLContext | None = None,
) -> WebhookClient:
    """The worker's client for webhooks: every connection through ``GuardedBackend`` (on
    asyncio's transports: ``streams.AsyncioBackend``), no redirects followed, no proxy from the
    environment (a proxy would connect anywhere). Connections are kept alive and reused per
    origin (``limits``)."""
    limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
    transport = httpx.AsyncHTTPTransport(trust_env=False, limits=limits)
    # httpx builds its httpcore pool without a way to give it a network backend: the pool is
    # replaced by an equivalent one that has ours (tests/dispatch/test_webhook_destinations.py
    # fails if a connection ever bypasses it).
    pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(policy, resolver=resolver, inner=AsyncioBackend()),
    )
    transport._pool = pool
    return WebhookClient(
        pool, transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
    )
