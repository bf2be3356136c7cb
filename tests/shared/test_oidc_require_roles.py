"""``require_roles`` with single sign-on: OIDC access tokens beside API tokens, over HTTP through
the shared app factory. Refusals are 401 problem+json that quote nothing of the token; a provider
whose keys cannot be fetched gives 503; nothing of the person reaches the logs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from shared.clock import utcnow
from shared.oidc import JwksCache, OidcConfig, OidcVerifier
from shared.runtime import Runtime
from tests.support.clock import Clock
from tests.support.logs import CapturedLogs
from tests.support.oidc import (
    AUDIENCE,
    OTHER_APP_CLIENT,
    ROLES_CLAIM,
    SITES_CLAIM,
    KeycloakRealm,
    LocalKey,
    claims_for,
    require_keycloak,
)
from tests.support.ports import free_port
from tests.support.sso_app import DEV_TOKEN, bearer, sso_client, sso_settings

ISSUER = "https://login.example-group.test/realms/dealers"
PROBLEM = "application/problem+json"


def assert_quotes_nothing(body: str, token: str, *values: str) -> None:
    for value in (token, token.split(".")[1], *values):
        assert value not in body


# ---------------------------------------------------------------- keys made here


def local_keys_hook(key: LocalKey) -> Any:
    """Lifespan hook: the verifier of the process, with a key set served from memory."""

    async def jwks() -> Mapping[str, Any]:
        return {"keys": [key.jwk()]}

    @asynccontextmanager
    async def hook(runtime: Runtime[Any]) -> AsyncIterator[None]:
        config = OidcConfig.from_settings(runtime.settings)
        runtime.provide(OidcVerifier(config, keys=JwksCache(jwks), clock=runtime.clock))
        yield

    return hook


@pytest.fixture(scope="module")
def key() -> LocalKey:
    return LocalKey()


async def test_jwt_and_api_tokens_side_by_side(tmp_path: Path, key: LocalKey) -> None:
    settings = sso_settings(tmp_path, oidc_issuer=ISSUER, oidc_audience=AUDIENCE)
    token = key.sign(claims_for(ISSUER, AUDIENCE, roles=["operator"], sites=["lyon-est"]))

    async with sso_client(settings, lifespan_hooks=[local_keys_hook(key)]) as client:
        signed_in = await client.get("/v1/operator-only", headers=bearer(token))
        machine = await client.get("/v1/operator-only", headers=bearer(DEV_TOKEN))
        not_a_manager = await client.get("/v1/manager-only", headers=bearer(token))

    assert signed_in.status_code == 200
    assert signed_in.json()["via"] == "oidc"
    assert signed_in.json()["roles"] == ["operator"]
    assert signed_in.json()["sites"] == ["lyon-est"]
    assert machine.status_code == 200
    assert machine.json()["via"] == "api_token"
    assert not_a_manager.status_code == 403


async def test_refusals_are_401_problems_that_quote_nothing(
    tmp_path: Path, key: LocalKey, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = CapturedLogs(capsys)
    clock = Clock(utcnow())
    settings = sso_settings(tmp_path, oidc_issuer=ISSUER, oidc_audience=AUDIENCE)
    person: dict[str, Any] = {"name": "Alice Example", "email": "alice@example.test"}
    now = clock.now.timestamp()
    tokens = {
        "expired": key.sign(claims_for(ISSUER, AUDIENCE, now=now - 600, roles=["operator"])),
        "audience": key.sign(claims_for(ISSUER, "other", now=now, roles=["operator"], **person)),
        "signature": LocalKey(kid=key.kid).sign(
            claims_for(ISSUER, AUDIENCE, now=now, roles=["operator"], **person)
        ),
    }

    async with sso_client(settings, clock=clock, lifespan_hooks=[local_keys_hook(key)]) as client:
        answers = {
            name: await client.get("/v1/operator-only", headers=bearer(token))
            for name, token in tokens.items()
        }

    for name, answer in answers.items():
        assert answer.status_code == 401, name
        assert answer.headers["content-type"] == PROBLEM
        assert answer.headers["www-authenticate"] == "Bearer"
        assert_quotes_nothing(answer.text, tokens[name], *person.values(), "alice")
    assert answers["expired"].json()["detail"] == "The access token has expired."
    assert answers["audience"].json()["detail"] == "The access token is not valid for this service."
    refused = [event for event in logs.events if event.get("event") == "auth.oidc_token_refused"]
    assert sorted(event["reason"] for event in refused) == ["audience", "expired", "signature"]
    log_text = json.dumps(logs.events)
    assert_quotes_nothing(log_text, tokens["audience"], *person.values(), "alice")


async def test_a_jwt_is_an_unknown_api_token_when_sign_on_is_off(
    tmp_path: Path, key: LocalKey
) -> None:
    token = key.sign(claims_for(ISSUER, AUDIENCE, roles=["admin"]))

    async with sso_client(sso_settings(tmp_path)) as client:
        answer = await client.get("/v1/operator-only", headers=bearer(token))

    assert answer.status_code == 401
    assert answer.json()["detail"] == "The token is unknown, revoked or expired."


async def test_a_provider_that_cannot_be_reached_gives_503_not_500(
    tmp_path: Path, key: LocalKey, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = CapturedLogs(capsys)
    issuer = f"http://127.0.0.1:{free_port()}/realms/dealers"
    settings = sso_settings(tmp_path, oidc_issuer=issuer, oidc_audience=AUDIENCE)
    token = key.sign(claims_for(issuer, AUDIENCE, roles=["operator"]))

    async with sso_client(settings) as client:
        first = await client.get("/v1/operator-only", headers=bearer(token))
        second = await client.get("/v1/operator-only", headers=bearer(token))
        machine = await client.get("/v1/operator-only", headers=bearer(DEV_TOKEN))

    assert first.status_code == second.status_code == 503
    assert first.headers["content-type"] == PROBLEM
    assert first.headers["retry-after"] == "5"
    assert machine.status_code == 200  # API tokens do not depend on the provider
    unavailable = [event for event in logs.events if event.get("event") == "oidc.jwks_unavailable"]
    assert len(unavailable) == 1  # the second request did not go to the network again


# ---------------------------------------------------------------- Keycloak


@pytest.fixture
async def keycloak() -> KeycloakRealm:
    return await require_keycloak()


def keycloak_settings(tmp_path: Path, keycloak: KeycloakRealm) -> Any:
    return sso_settings(
        tmp_path,
        oidc_issuer=keycloak.issuer,
        oidc_audience=AUDIENCE,
        oidc_roles_claim=ROLES_CLAIM,
        oidc_sites_claim=SITES_CLAIM,
    )


@pytest.mark.oidc
async def test_keycloak_people_over_http(
    tmp_path: Path, keycloak: KeycloakRealm, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = CapturedLogs(capsys)
    operator = await keycloak.user_token("olivia.operator")
    manager = await keycloak.user_token("marc.manager")
    auditor = await keycloak.user_token("ulysse.auditor")
    other_app = await keycloak.client_token(OTHER_APP_CLIENT)

    async with sso_client(keycloak_settings(tmp_path, keycloak)) as client:
        as_operator = await client.get("/v1/operator-only", headers=bearer(operator))
        as_manager = await client.get("/v1/manager-only", headers=bearer(manager))
        operator_as_manager = await client.get("/v1/manager-only", headers=bearer(operator))
        as_auditor = await client.get("/v1/operator-only", headers=bearer(auditor))
        as_other_app = await client.get("/v1/operator-only", headers=bearer(other_app))
        as_machine = await client.get("/v1/operator-only", headers=bearer(DEV_TOKEN))

    assert as_operator.status_code == 200
    assert as_operator.json()["roles"] == ["operator"]
    assert as_operator.json()["sites"] == ["lyon-est"]
    assert as_manager.status_code == 200
    assert as_manager.json()["sites"] == ["lyon-est", "paris-sud"]
    assert operator_as_manager.status_code == 403
    assert as_auditor.status_code == 403  # signed in, but holds no role of this project
    assert as_other_app.status_code == 401  # an admin of another application: wrong audience
    assert as_machine.status_code == 200
    log_text = json.dumps(logs.events)
    for secret in (operator, manager, "Olivia", "olivia.operator", "example.test", "Marc"):
        assert secret not in log_text
