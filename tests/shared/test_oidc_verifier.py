"""The OIDC verifier with keys made here: every way a token can be wrong, and how the keys are
fetched (once, again for a new kid, never per request, and not at all while rate-limited)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

import jwt
import pytest

from shared.oidc import (
    JwksCache,
    KeysUnavailable,
    OidcConfig,
    OidcVerifier,
    TokenRejected,
    actor_id,
    looks_like_jwt,
)
from tests.support.clock import TUESDAY_11H, Clock
from tests.support.oidc import LocalKey, b64url, claims_for, tampered, unsigned

ISSUER = "https://login.example-group.test/realms/dealers"
AUDIENCE = "vo-leads-api"


class Jwks:
    """A provider's key set the test edits, counting the fetches; ``down`` makes them fail."""

    def __init__(self, *keys: LocalKey) -> None:
        self.keys: list[dict[str, Any]] = [key.jwk() for key in keys]
        self.fetches = 0
        self.down = False

    async def __call__(self) -> Mapping[str, Any]:
        self.fetches += 1
        if self.down:
            raise KeysUnavailable("JWKS unreachable (ConnectError)")
        return {"keys": list(self.keys)}


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(TUESDAY_11H)


@pytest.fixture(scope="module")
def key() -> LocalKey:
    return LocalKey()  # RSA key generation is slow: one key for the module


def make_verifier(
    jwks: Jwks,
    clock: Clock,
    *,
    monotonic: Monotonic | None = None,
    min_refresh_interval_s: float = 30.0,
    **config: Any,
) -> OidcVerifier:
    settings: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE}
    settings.update(config)
    cache = JwksCache(
        jwks,
        max_age_s=3600,
        min_refresh_interval_s=min_refresh_interval_s,
        monotonic=monotonic or Monotonic(),
    )
    return OidcVerifier(OidcConfig(**settings), keys=cache, clock=clock)


def token_claims(clock: Clock, **extra: Any) -> dict[str, Any]:
    return claims_for(ISSUER, AUDIENCE, now=clock.now.timestamp(), **extra)


async def refusal(verifier: OidcVerifier, token: str) -> str:
    with pytest.raises(TokenRejected) as caught:
        await verifier.verify(token)
    return caught.value.reason


# ---------------------------------------------------------------- accepted


async def test_a_valid_token_gives_the_person_with_known_roles_and_sites(
    key: LocalKey, clock: Clock
) -> None:
    verifier = make_verifier(Jwks(key), clock)
    token = key.sign(token_claims(clock, roles=["operator", "auditor"], sites=["lyon-est"]))

    identity = await verifier.verify(token)
    principal = identity.principal()

    assert principal.roles == {"operator"}  # "auditor" is no role of this project
    assert principal.sites == frozenset({"lyon-est"})
    assert principal.name == "Alice Example"
    assert principal.via == "oidc"
    assert principal.subject == "f4c1d2e3-0000-4000-8000-00000000a11c"
    assert principal.token_id == actor_id(ISSUER, principal.subject)
    assert len(principal.token_id) == 36  # fits the actor columns (String(36))
    assert principal.covers_site("lyon-est")
    assert not principal.covers_site("paris-sud")


async def test_the_same_person_keeps_one_actor_id_across_tokens(
    key: LocalKey, clock: Clock
) -> None:
    verifier = make_verifier(Jwks(key), clock)
    first = await verifier.verify(key.sign(token_claims(clock, roles=["operator"])))
    clock.advance(minutes=4)
    second = await verifier.verify(key.sign(token_claims(clock, roles=["operator"])))
    other = await verifier.verify(key.sign(token_claims(clock, sub="someone-else")))

    assert first.actor_id == second.actor_id
    assert other.actor_id != first.actor_id


async def test_claims_at_a_dotted_path_and_as_strings(key: LocalKey, clock: Clock) -> None:
    verifier = make_verifier(Jwks(key), clock, roles_claim="realm_access.roles", sites_claim="site")
    token = key.sign(
        token_claims(clock, realm_access={"roles": ["manager", "seller"]}, site="lyon-est")
    )

    principal = (await verifier.verify(token)).principal()

    assert principal.roles == {"manager", "seller"}
    assert principal.sites == frozenset({"lyon-est"})


async def test_no_sites_claim_leaves_the_sites_unlimited_and_a_bad_one_limits_to_none(
    key: LocalKey, clock: Clock
) -> None:
    verifier = make_verifier(Jwks(key), clock)

    unlimited = await verifier.verify(key.sign(token_claims(clock, roles=["manager"])))
    garbled = await verifier.verify(
        key.sign(token_claims(clock, roles=["manager"], sites={"a": 1}))
    )

    assert unlimited.sites is None
    assert unlimited.principal().covers_site("anywhere")
    assert garbled.sites == frozenset()
    assert not garbled.principal().covers_site("anywhere")


async def test_a_token_without_a_known_role_gives_a_principal_without_rights(
    key: LocalKey, clock: Clock
) -> None:
    verifier = make_verifier(Jwks(key), clock)

    principal = (
        await verifier.verify(key.sign(token_claims(clock, roles=["auditor", "superuser"])))
    ).principal()

    assert principal.roles == frozenset()
    assert not principal.has_any(["operator", "manager", "seller", "source"])


async def test_the_name_falls_back_to_the_username_then_to_a_pseudonym(
    key: LocalKey, clock: Clock
) -> None:
    verifier = make_verifier(Jwks(key), clock)
    claims = token_claims(clock)
    del claims["name"]
    by_username = await verifier.verify(key.sign(claims))
    del claims["preferred_username"]
    pseudonym = await verifier.verify(key.sign(claims))

    assert by_username.name == "alice"
    assert pseudonym.name == f"sso-{pseudonym.actor_id[:8]}"


async def test_an_elliptic_curve_key_and_an_audience_list(clock: Clock) -> None:
    key = LocalKey(algorithm="ES256")
    verifier = make_verifier(Jwks(key), clock)
    token = key.sign(claims_for(ISSUER, ["account", AUDIENCE], now=clock.now.timestamp()))

    assert (await verifier.verify(token)).subject


async def test_leeway_accepts_a_token_expired_seconds_ago(key: LocalKey, clock: Clock) -> None:
    verifier = make_verifier(Jwks(key), clock, leeway_s=30)
    token = key.sign(token_claims(clock, lifetime_s=60))

    clock.advance(seconds=60 + 29)
    assert (await verifier.verify(token)).subject
    clock.advance(seconds=1)
    assert await refusal(verifier, token) == "expired"


# ---------------------------------------------------------------- refused


async def test_refusals(key: LocalKey, clock: Clock) -> None:
    verifier = make_verifier(Jwks(key), clock, leeway_s=0)
    now = clock.now.timestamp()
    other_key = LocalKey(kid=key.kid)  # same kid, another key pair

    cases = {
        "wrong audience": (key.sign(claims_for(ISSUER, "another-api", now=now)), "audience"),
        "no audience": (
            key.sign({k: v for k, v in token_claims(clock).items() if k != "aud"}),
            "audience",
        ),
        "wrong issuer": (
            key.sign(claims_for("https://evil.test/realms/dealers", AUDIENCE, now=now)),
            "issuer",
        ),
        "expired": (key.sign(token_claims(clock, exp=int(now) - 1)), "expired"),
        "not yet valid": (key.sign(token_claims(clock, nbf=int(now) + 60)), "not-yet-valid"),
        "issued in the future": (key.sign(token_claims(clock, iat=int(now) + 60)), "not-yet-valid"),
        "no expiry": (
            key.sign({k: v for k, v in token_claims(clock).items() if k != "exp"}),
            "missing-claim",
        ),
        "no subject": (
            key.sign({k: v for k, v in token_claims(clock).items() if k != "sub"}),
            "missing-claim",
        ),
        "tampered claims": (tampered(key.sign(token_claims(clock))), "signature"),
        "alg none": (unsigned(token_claims(clock, roles=["admin"]), kid=key.kid), "algorithm"),
        "signed by another key": (other_key.sign(token_claims(clock)), "signature"),
        "algorithm not allowed": (
            LocalKey(kid=key.kid, algorithm="RS512", private_key=key.private_key).sign(
                token_claims(clock)
            ),
            "algorithm",
        ),
        "no kid": (
            jwt.encode(token_claims(clock), key.private_key, algorithm="RS256"),
            "no-key-id",
        ),
        "not a JWT": ("eyJhbGciOiJSUzI1NiJ9.not-base64!.x", "malformed"),
    }
    reasons = {name: await refusal(verifier, token) for name, (token, _) in cases.items()}

    assert reasons == {name: reason for name, (_, reason) in cases.items()}


async def test_hs256_signed_with_the_public_key_is_refused(key: LocalKey, clock: Clock) -> None:
    # The classic confusion: the provider's public key (which anyone has) used as an HMAC secret.
    verifier = make_verifier(Jwks(key), clock, algorithms=("RS256", "HS256"))
    forged = _hmac_token(token_claims(clock, roles=["admin"]), key)

    assert await refusal(verifier, forged) == "algorithm"


def _hmac_token(claims: dict[str, Any], key: LocalKey) -> str:
    # PyJWT refuses to HMAC with a PEM key (its own guard): build the forgery by hand.
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    payload = b64url(json.dumps(claims).encode())
    signature = hmac.new(key.public_pem, f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}.{payload}.{b64url(signature.digest())}"


async def test_a_key_published_for_another_algorithm_does_not_verify(
    key: LocalKey, clock: Clock
) -> None:
    jwks = Jwks()
    jwks.keys = [key.jwk(alg="PS256")]
    verifier = make_verifier(jwks, clock)

    assert await refusal(verifier, key.sign(token_claims(clock))) == "algorithm"


async def test_encryption_and_secret_keys_of_the_set_are_never_used(
    key: LocalKey, clock: Clock
) -> None:
    jwks = Jwks()
    jwks.keys = [
        key.jwk(use="enc"),
        {"kty": "oct", "kid": "hmac", "k": b64url(b"s" * 32), "alg": "HS256"},
    ]
    verifier = make_verifier(jwks, clock, min_refresh_interval_s=0)

    assert await refusal(verifier, key.sign(token_claims(clock))) == "unknown-key"
    assert await refusal(verifier, _hmac_with_secret(token_claims(clock))) == "algorithm"


def _hmac_with_secret(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, "s" * 32, algorithm="HS256", headers={"kid": "hmac"})


# ---------------------------------------------------------------- keys


async def test_keys_are_fetched_once_not_per_request(key: LocalKey, clock: Clock) -> None:
    jwks = Jwks(key)
    verifier = make_verifier(jwks, clock)
    token = key.sign(token_claims(clock, roles=["operator"]))

    for _ in range(20):
        await verifier.verify(token)

    assert jwks.fetches == 1


async def test_concurrent_first_requests_share_one_fetch(key: LocalKey, clock: Clock) -> None:
    jwks = Jwks(key)
    verifier = make_verifier(jwks, clock)
    token = key.sign(token_claims(clock, roles=["operator"]))

    await asyncio.gather(*(verifier.verify(token) for _ in range(10)))

    assert jwks.fetches == 1


async def test_a_new_kid_triggers_one_refresh_then_verifies(key: LocalKey, clock: Clock) -> None:
    jwks = Jwks(key)
    monotonic = Monotonic()
    verifier = make_verifier(jwks, clock, monotonic=monotonic)
    await verifier.verify(key.sign(token_claims(clock)))

    rotated = LocalKey()
    jwks.keys.append(rotated.jwk())  # the provider publishes its next key, then signs with it
    monotonic.now += 31
    new_token = rotated.sign(token_claims(clock))

    assert (await verifier.verify(new_token)).subject
    assert (await verifier.verify(key.sign(token_claims(clock)))).subject  # old key still listed
    assert jwks.fetches == 2


async def test_unknown_kids_refresh_at_most_once_per_interval(key: LocalKey, clock: Clock) -> None:
    jwks = Jwks(key)
    monotonic = Monotonic()
    verifier = make_verifier(jwks, clock, monotonic=monotonic, min_refresh_interval_s=30)
    await verifier.verify(key.sign(token_claims(clock)))
    stranger = LocalKey()

    for _ in range(50):  # a flood of tokens naming unknown kids
        assert await refusal(verifier, stranger.sign(token_claims(clock))) == "unknown-key"
    assert jwks.fetches == 1  # the first fetch was under 30 s ago: no refresh at all

    monotonic.now += 30
    for _ in range(50):
        another_kid = LocalKey(private_key=stranger.private_key)  # a new kid each time
        assert await refusal(verifier, another_kid.sign(token_claims(clock))) == "unknown-key"
    assert jwks.fetches == 2


async def test_keys_older_than_their_max_age_are_fetched_again(key: LocalKey, clock: Clock) -> None:
    jwks = Jwks(key)
    monotonic = Monotonic()
    verifier = make_verifier(jwks, clock, monotonic=monotonic)
    token = key.sign(token_claims(clock))
    await verifier.verify(token)

    monotonic.now += 3600
    await verifier.verify(token)

    assert jwks.fetches == 2


async def test_a_removed_key_stops_verifying_after_a_refresh(key: LocalKey, clock: Clock) -> None:
    retired, current = LocalKey(), key
    jwks = Jwks(retired, current)
    monotonic = Monotonic()
    verifier = make_verifier(jwks, clock, monotonic=monotonic)
    old_token = retired.sign(token_claims(clock))
    assert (await verifier.verify(old_token)).subject

    jwks.keys = [current.jwk()]
    monotonic.now += 3600  # the next fetch happens at the keys' max age
    assert await refusal(verifier, old_token) == "unknown-key"


async def test_provider_down_with_no_keys_is_unavailable_and_not_hammered(
    key: LocalKey, clock: Clock
) -> None:
    jwks = Jwks(key)
    jwks.down = True
    monotonic = Monotonic()
    verifier = make_verifier(jwks, clock, monotonic=monotonic)
    token = key.sign(token_claims(clock))

    for _ in range(10):
        with pytest.raises(KeysUnavailable):
            await verifier.verify(token)
    assert jwks.fetches == 1

    jwks.down = False
    monotonic.now += 30
    assert (await verifier.verify(token)).subject
    assert jwks.fetches == 2


async def test_provider_down_keeps_the_keys_held(key: LocalKey, clock: Clock) -> None:
    jwks = Jwks(key)
    monotonic = Monotonic()
    verifier = make_verifier(jwks, clock, monotonic=monotonic)
    token = key.sign(token_claims(clock))
    await verifier.verify(token)

    jwks.down = True
    monotonic.now += 3600  # time to refresh, but the provider is down
    assert (await verifier.verify(token)).subject
    # A token naming a key we cannot look up now: "retry", not "refused".
    with pytest.raises(KeysUnavailable):
        await verifier.verify(LocalKey().sign(token_claims(clock)))


def test_jwt_and_api_tokens_are_told_apart_without_decoding(key: LocalKey) -> None:
    assert looks_like_jwt(key.sign({"sub": "x"}))
    assert not looks_like_jwt("vo_" + "A" * 43)
    assert not looks_like_jwt("vo_test-token-with-every-role")
    assert not looks_like_jwt("eyJ-only-one-part")
