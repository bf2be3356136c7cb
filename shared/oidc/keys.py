"""The provider's signing keys (JWKS), fetched over HTTP and kept in memory.

No request waits on the network while its key is known: keys are fetched at the first token,
again when they are older than ``max_age_s``, and early when a token names an unknown ``kid``
(a key rotation), at most once per ``min_refresh_interval_s`` whatever the tokens say. When the
provider does not answer, the keys already held keep working.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import httpx
import structlog
from jwt import PyJWK
from jwt.exceptions import PyJWTError

from shared.oidc.config import OidcConfig
from shared.oidc.errors import KeysUnavailable, TokenRejected
from shared.redact import safe_error_text
from shared.settings import is_https_or_loopback

log = structlog.get_logger(__name__)

# Key types that can verify a public-key signature; "oct" (a shared secret) never can here.
_PUBLIC_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})


class JwksSource(Protocol):
    async def __call__(self) -> Mapping[str, Any]:
        """The JWKS document (``{"keys": [...]}``); raises KeysUnavailable."""
        ...


class HttpJwksSource:
    """GETs the JWKS at ``config.jwks_url``, or at the ``jwks_uri`` the issuer's discovery
    document names (looked up once, then kept)."""

    def __init__(self, config: OidcConfig) -> None:
        self._config = config
        self._jwks_url = config.jwks_url

    async def __call__(self) -> Mapping[str, Any]:
        # One short-lived client per fetch: fetches are rare, and nothing is left to close.
        async with httpx.AsyncClient(
            timeout=self._config.http_timeout_s, follow_redirects=False
        ) as client:
            if self._jwks_url is None:
                self._jwks_url = await self._discover(client)
            document = await _get_json(client, self._jwks_url, "JWKS")
        if not isinstance(document.get("keys"), list):
            raise KeysUnavailable("the JWKS document has no 'keys' list")
        return document

    async def _discover(self, client: httpx.AsyncClient) -> str:
        document = await _get_json(client, self._config.discovery_url, "discovery document")
        # OIDC Discovery 1.0 §4.3: the document must name the issuer it was asked for.
        if document.get("issuer") != self._config.issuer:
            raise KeysUnavailable("the discovery document names another issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not is_https_or_loopback(jwks_uri):
            raise KeysUnavailable("the discovery document has no usable jwks_uri")
        return jwks_uri


async def _get_json(client: httpx.AsyncClient, url: str, what: str) -> Mapping[str, Any]:
    try:
        response = await client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise KeysUnavailable(f"{what} unreachable ({type(exc).__name__})") from exc
    if response.status_code != 200:
        raise KeysUnavailable(f"{what} answered HTTP {response.status_code}")
    try:
        document = response.json()
    except ValueError as exc:
        raise KeysUnavailable(f"{what} is not JSON") from exc
    if not isinstance(document, dict):
        raise KeysUnavailable(f"{what} is not a JSON object")
    return document


class JwksCache:
    def __init__(
        self,
        source: JwksSource | Callable[[], Awaitable[Mapping[str, Any]]],
        *,
        max_age_s: float = 3600.0,
        min_refresh_interval_s: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._max_age_s = max_age_s
        self._min_interval_s = min_refresh_interval_s
        self._monotonic = monotonic
        self._keys: dict[str, Mapping[str, Any]] = {}
        self._parsed: dict[tuple[str, str], PyJWK] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last fetch, successful or not
        self._last_failed = False
        self._lock = asyncio.Lock()
        self.fetches = 0  # fetches attempted (for tests and metrics)

    async def key_for(self, kid: str, algorithm: str) -> PyJWK:
        """The key ``kid`` for verifying ``algorithm``. Raises TokenRejected (no such key) or
        KeysUnavailable (no keys can be had now)."""
        if self._due():
            await self._refresh()
        if kid not in self._keys and self._may_fetch_now():
            await self._refresh()  # a key published since the last fetch (a rotation)
        jwk = self._keys.get(kid)
        if jwk is None:
            if self._last_failed:
                # The key may exist but the provider cannot tell us now: retry, not a refusal.
                raise KeysUnavailable("unknown key while the provider's keys cannot be fetched")
            raise TokenRejected("unknown-key")
        return self._parse(kid, jwk, algorithm)

    def _due(self) -> bool:
        """Never fetched, or fetched longer than ``max_age_s`` ago (and not rate-limited)."""
        if not self._may_fetch_now():
            return False
        return self._fetched_at is None or self._monotonic() - self._fetched_at >= self._max_age_s

    def _may_fetch_now(self) -> bool:
        return (
            self._attempted_at is None
            or self._monotonic() - self._attempted_at >= self._min_interval_s
        )

    async def _refresh(self) -> None:
        attempted_before = self._attempted_at
        async with self._lock:
            if self._attempted_at != attempted_before:
                return  # another request fetched while this one waited: use its result
            self._attempted_at = self._monotonic()
            self.fetches += 1
            try:
                document = await self._source()
            except KeysUnavailable as exc:
                self._last_failed = True
                log.warning(
                    "oidc.jwks_unavailable", error=safe_error_text(exc), keys_held=len(self._keys)
                )
                if not self._keys:
                    raise
                return
            self._store(document)
            self._fetched_at = self._attempted_at
            self._last_failed = False
            log.info("oidc.jwks_fetched", keys=len(self._keys))

    def _store(self, document: Mapping[str, Any]) -> None:
        keys: dict[str, Mapping[str, Any]] = {}
        for jwk in document.get("keys", ()):
            if not isinstance(jwk, dict):
                continue
            kid = jwk.get("kid")
            if not isinstance(kid, str) or not kid:
                continue
            if jwk.get("use", "sig") != "sig" or jwk.get("kty") not in _PUBLIC_KEY_TYPES:
                continue  # encryption keys and shared secrets never verify a token here
            keys[kid] = jwk
        self._keys = keys
        self._parsed = {entry: parsed for entry, parsed in self._parsed.items() if entry[0] in keys}

    def _parse(self, kid: str, jwk: Mapping[str, Any], algorithm: str) -> PyJWK:
        parsed = self._parsed.get((kid, algorithm))
        if parsed is not None:
            return parsed
        declared = jwk.get("alg")
        if declared is not None and declared != algorithm:
            raise TokenRejected("algorithm")  # the key is published for another algorithm
        try:
            parsed = PyJWK(dict(jwk), algorithm=algorithm)
        except PyJWTError as exc:
            raise TokenRejected("unusable-key") from exc
        self._parsed[(kid, algorithm)] = parsed
        return parsed
