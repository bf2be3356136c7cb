"""Checks an OIDC access token (a JWT): its algorithm against the allow-list, its signature
against the provider's keys, ``iss``, ``aud``, ``exp``/``nbf``/``iat`` on the service's clock,
``sub``; then reads the person's roles and sites from the configured claims."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jwt
import structlog

from shared.clock import Clock, utcnow
from shared.oidc.claims import Identity, identity_from_claims
from shared.oidc.config import OidcConfig
from shared.oidc.errors import RefusalReason, TokenRejected
from shared.oidc.keys import HttpJwksSource, JwksCache

log = structlog.get_logger(__name__)

_REQUIRED_CLAIMS = ["iss", "aud", "exp", "sub"]


def looks_like_jwt(token: str) -> bool:
    """A cheap test, no decoding: three dot-separated parts, the first a base64url JSON object
    (``{"`` encodes as ``eyJ``). API tokens (``vo_…``, base64url) never have a dot."""
    return token.startswith("eyJ") and token.count(".") == 2


class OidcVerifier:
    def __init__(
        self, config: OidcConfig, *, keys: JwksCache | None = None, clock: Clock = utcnow
    ) -> None:
        self.config = config
        self.keys = keys or JwksCache(
            HttpJwksSource(config),
            max_age_s=config.jwks_max_age_s,
            min_refresh_interval_s=config.jwks_min_refresh_interval_s,
        )
        self._clock = clock

    async def verify(self, token: str) -> Identity:
        """The identity a valid token names. Raises TokenRejected, or KeysUnavailable when the
        provider's keys cannot be had (then the token is neither accepted nor refused)."""
        try:
            return await self._verify(token)
        except TokenRejected as refusal:
            log.info("auth.oidc_token_refused", reason=refusal.reason)
            raise

    async def _verify(self, token: str) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenRejected("malformed") from exc
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self.config.algorithms:
            raise TokenRejected("algorithm")  # "none", HS*, or one not allowed here
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("no-key-id")
        key = await self.keys.key_for(kid, algorithm)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.config.audience,
                issuer=self.config.issuer,
                options={
                    "require": _REQUIRED_CLAIMS,
                    # Times are checked below on the service's clock (tests move it).
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.PyJWTError as exc:
            raise TokenRejected(_reason_of(exc)) from exc
        self._check_times(claims, self._clock())
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise TokenRejected("missing-claim")
        return identity_from_claims(claims, self.config)

    def _check_times(self, claims: Mapping[str, Any], now: datetime) -> None:
        moment = now.timestamp()
        leeway = self.config.leeway_s
        expires = _number(claims.get("exp"))
        if expires is None:
            raise TokenRejected("missing-claim")
        if moment >= expires + leeway:
            raise TokenRejected("expired")
        for name in ("nbf", "iat"):
            if name not in claims:
                continue
            value = _number(claims[name])
            if value is None:
                raise TokenRejected("invalid")
            if value > moment + leeway:
                raise TokenRejected("not-yet-valid")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _reason_of(exc: jwt.PyJWTError) -> RefusalReason:
    # Most specific first: several of these subclass each other.
    reasons: tuple[tuple[type[jwt.PyJWTError], RefusalReason], ...] = (
        (jwt.InvalidSignatureError, "signature"),
        (jwt.InvalidAlgorithmError, "algorithm"),
        (jwt.InvalidAudienceError, "audience"),
        (jwt.InvalidIssuerError, "issuer"),
        (jwt.InvalidKeyError, "unusable-key"),
        (jwt.DecodeError, "malformed"),
    )
    if isinstance(exc, jwt.MissingRequiredClaimError):
        missing: dict[str, RefusalReason] = {"aud": "audience", "iss": "issuer"}
        return missing.get(exc.claim, "missing-claim")
    for kind, reason in reasons:
        if isinstance(exc, kind):
            return reason
    return "invalid"
