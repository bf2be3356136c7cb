"""Single-sign-on tests: the Keycloak realm of scripts/oidc.sh (deploy/keycloak/realm.json) and
locally generated keys that sign tokens the way a provider would."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from shared.oidc import OidcConfig

KEYCLOAK_URL = os.environ.get(
    "TEST_OIDC_URL", f"http://127.0.0.1:{os.environ.get('OIDC_PORT', '18080')}"
)
REALM = "vo-leads"
AUDIENCE = "vo-leads-api"
ROLES_CLAIM = "vo_roles"
SITES_CLAIM = "vo_sites"
# Test-only credentials of deploy/keycloak/realm.json (a loopback server with throwaway data).
TESTS_CLIENT = ("vo-leads-tests", "vo-leads-tests-secret")
OTHER_APP_CLIENT = ("vo-leads-other-app", "vo-leads-other-app-secret")
REALM_ADMIN_CLIENT = ("vo-leads-realm-admin", "vo-leads-realm-admin-secret")
PASSWORDS = {
    "olivia.operator": "olivia-test-password",
    "marc.manager": "marc-test-password",
    "ada.admin": "ada-test-password",
    "ulysse.auditor": "ulysse-test-password",
}


@dataclass
class KeycloakRealm:
    """The test realm of a running Keycloak, reached over HTTP like any client would."""

    base_url: str = KEYCLOAK_URL
    realm: str = REALM

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/realms/{self.realm}"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"

    def config(self, **changes: Any) -> OidcConfig:
        values: dict[str, Any] = {
            "issuer": self.issuer,
            "audience": AUDIENCE,
            "roles_claim": ROLES_CLAIM,
            "sites_claim": SITES_CLAIM,
            "jwks_min_refresh_interval_s": 0.0,
        }
        values.update(changes)
        return OidcConfig(**values)

    async def _token(self, form: Mapping[str, str]) -> str:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(
                f"{self.issuer}/protocol/openid-connect/token", data=dict(form)
            )
        assert response.status_code == 200, f"token endpoint answered {response.status_code}"
        token = response.json()["access_token"]
        assert isinstance(token, str)
        return token

    async def client_token(self, client: tuple[str, str] = TESTS_CLIENT) -> str:
        """An access token of a client's service account (client credentials grant)."""
        client_id, secret = client
        return await self._token(
            {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        )

    async def user_token(self, username: str) -> str:
        """An access token of a test user (direct grant through the tests client)."""
        client_id, secret = TESTS_CLIENT
        return await self._token(
            {
                "grant_type": "password",
                "client_id": client_id,
                "client_secret": secret,
                "username": username,
                "password": PASSWORDS[username],
            }
        )

    @asynccontextmanager
    async def rotated_key(self) -> AsyncIterator[str]:
        """A new RSA signing key, of a priority above every other, through the admin API; new
        tokens are signed with it. Yields its ``kid``; the key is deleted on exit."""
        admin = await self.client_token(REALM_ADMIN_CLIENT)
        admin_url = f"{self.base_url}/admin/realms/{self.realm}"
        async with httpx.AsyncClient(
            timeout=60, headers={"Authorization": f"Bearer {admin}"}
        ) as client:
            realm = (await client.get(admin_url)).json()
            keys = (await client.get(f"{admin_url}/keys")).json()["keys"]
            top = max(int(key.get("providerPriority", 0)) for key in keys)
            created = await client.post(
                f"{admin_url}/components",
                json={
                    "name": f"rotated-{uuid.uuid4().hex[:8]}",
                    "providerId": "rsa-generated",
                    "providerType": "org.keycloak.keys.KeyProvider",
                    "parentId": realm["id"],
                    "config": {
                        "priority": [str(top + 100)],
                        "keySize": ["2048"],
                        "algorithm": ["RS256"],
                        "active": ["true"],
                        "enabled": ["true"],
                    },
                },
            )
            assert created.status_code == 201, f"key creation answered {created.status_code}"
            component_id = created.headers["location"].rsplit("/", 1)[-1]
            try:
                keys = (await client.get(f"{admin_url}/keys")).json()["keys"]
                kid = next(key["kid"] for key in keys if key["providerId"] == component_id)
                yield kid
            finally:
                deleted = await client.delete(f"{admin_url}/components/{component_id}")
                assert deleted.status_code == 204, f"key deletion answered {deleted.status_code}"


async def require_keycloak() -> KeycloakRealm:
    """The test realm; skips the test when Keycloak does not answer (a failure in CI)."""
    realm = KeycloakRealm()
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(f"{realm.issuer}/.well-known/openid-configuration")
        response.raise_for_status()
    except httpx.HTTPError as exc:
        pytest.skip(f"Keycloak unreachable at {realm.base_url}: {type(exc).__name__}")
    return realm


# ---------------------------------------------------------------- local keys


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class LocalKey:
    """A signing key made here: signs tokens and publishes its JWK, like a provider's key."""

    kid: str = field(default_factory=lambda: uuid.uuid4().hex)
    algorithm: str = "RS256"
    private_key: Any = None

    def __post_init__(self) -> None:
        if self.private_key is None:
            if self.algorithm.startswith("ES"):
                self.private_key = ec.generate_private_key(ec.SECP256R1())
            else:
                self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def public_pem(self) -> bytes:
        public: bytes = self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return public

    def jwk(self, **extra: Any) -> dict[str, Any]:
        kind = ECAlgorithm if self.algorithm.startswith("ES") else RSAAlgorithm
        jwk: dict[str, Any] = json.loads(kind.to_jwk(self.private_key.public_key()))
        jwk.update({"kid": self.kid, "alg": self.algorithm, "use": "sig"})
        jwk.update(extra)
        return jwk

    def sign(self, claims: Mapping[str, Any], **headers: Any) -> str:
        return jwt.encode(
            dict(claims),
            self.private_key,
            algorithm=self.algorithm,
            headers={"kid": self.kid, **headers},
        )


def claims_for(
    issuer: str,
    audience: str | list[str],
    *,
    now: float | None = None,
    lifetime_s: int = 300,
    **extra: Any,
) -> dict[str, Any]:
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": "f4c1d2e3-0000-4000-8000-00000000a11c",
        "iat": issued,
        "exp": issued + lifetime_s,
        "name": "Alice Example",
        "preferred_username": "alice",
    }
    claims.update(extra)
    return claims


def unsigned(claims: Mapping[str, Any], **headers: Any) -> str:
    """A token with ``alg: none`` and an empty signature."""
    header = {"alg": "none", "typ": "JWT", **headers}
    return ".".join(
        (
            b64url(json.dumps(header).encode()),
            b64url(json.dumps(dict(claims)).encode()),
            "",
        )
    )


def tampered(token: str) -> str:
    """The same token with one claim changed and the original signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims[ROLES_CLAIM] = ["admin"]
    claims["roles"] = ["admin"]
    return ".".join((header, b64url(json.dumps(claims).encode()), signature))
