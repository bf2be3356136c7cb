"""The verifier against a real OIDC provider: Keycloak started by scripts/oidc.sh with the realm
of deploy/keycloak/realm.json. Its tokens, its JWKS over HTTP, its discovery document, and a
key rotation made through its admin API."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest

from shared.clock import utcnow
from shared.oidc import OidcVerifier, TokenRejected
from tests.support.clock import Clock
from tests.support.oidc import (
    OTHER_APP_CLIENT,
    KeycloakRealm,
    LocalKey,
    require_keycloak,
    tampered,
    unsigned,
)

pytestmark = pytest.mark.oidc


@pytest.fixture
async def keycloak() -> KeycloakRealm:
    return await require_keycloak()


def now_clock() -> Clock:
    return Clock(utcnow())


async def refusal(verifier: OidcVerifier, token: str) -> str:
    with pytest.raises(TokenRejected) as caught:
        await verifier.verify(token)
    return caught.value.reason


async def test_keycloak_tokens_give_the_person_with_roles_and_sites(
    keycloak: KeycloakRealm,
) -> None:
    verifier = OidcVerifier(keycloak.config())  # JWKS found through the discovery document

    manager = (await verifier.verify(await keycloak.user_token("marc.manager"))).principal()
    operator = (await verifier.verify(await keycloak.user_token("olivia.operator"))).principal()
    admin = (await verifier.verify(await keycloak.user_token("ada.admin"))).principal()
    machine = (await verifier.verify(await keycloak.client_token())).principal()

    assert manager.roles == {"manager"}  # the realm also gives "auditor": not a role here
    assert manager.sites == frozenset({"lyon-est", "paris-sud"})
    assert manager.name == "Marc Manager"
    assert operator.roles == {"operator"}
    assert operator.sites == frozenset({"lyon-est"})
    assert admin.roles == {"admin"}
    assert admin.sites is None
    assert machine.roles == {"source"}
    assert machine.name == "service-account-vo-leads-tests"
    assert {p.via for p in (manager, operator, admin, machine)} == {"oidc"}
    assert len({p.token_id for p in (manager, operator, admin, machine)}) == 4
    assert verifier.keys.fetches == 1


async def test_the_same_person_gets_the_same_actor_id_from_two_sign_ins(
    keycloak: KeycloakRealm,
) -> None:
    verifier = OidcVerifier(keycloak.config())

    first = await verifier.verify(await keycloak.user_token("olivia.operator"))
    second = await verifier.verify(await keycloak.user_token("olivia.operator"))

    assert first.principal().token_id == second.principal().token_id


async def test_a_token_for_another_application_is_refused(keycloak: KeycloakRealm) -> None:
    verifier = OidcVerifier(keycloak.config())
    # Same realm, same keys, role "admin" — but not issued for this API (no vo-leads-api in aud).
    other_app = await keycloak.client_token(OTHER_APP_CLIENT)

    assert await refusal(verifier, other_app) == "audience"


async def test_wrong_audience_and_wrong_issuer_are_refused(keycloak: KeycloakRealm) -> None:
    token = await keycloak.user_token("olivia.operator")
    for_another_api = OidcVerifier(keycloak.config(audience="another-api"))
    # The same keys, but the service trusts another realm's issuer.
    another_issuer = OidcVerifier(
        keycloak.config(
            issuer=f"{keycloak.base_url}/realms/another-group", jwks_url=keycloak.jwks_url
        )
    )

    assert await refusal(for_another_api, token) == "audience"
    assert await refusal(another_issuer, token) == "issuer"


async def test_an_expired_keycloak_token_is_refused(keycloak: KeycloakRealm) -> None:
    clock = now_clock()
    verifier = OidcVerifier(keycloak.config(leeway_s=30), clock=clock)
    token = await keycloak.user_token("olivia.operator")
    assert (await verifier.verify(token)).subject

    # The realm's access tokens live 300 s: past that and the leeway, refused.
    clock.now += timedelta(seconds=300 + 31)

    assert await refusal(verifier, token) == "expired"


async def test_forged_keycloak_tokens_are_refused(keycloak: KeycloakRealm) -> None:
    verifier = OidcVerifier(keycloak.config())
    genuine = await keycloak.user_token("olivia.operator")
    identity = await verifier.verify(genuine)
    kid = jwt.get_unverified_header(genuine)["kid"]
    claims = jwt.decode(genuine, options={"verify_signature": False})
    claims["vo_roles"] = ["admin"]
    impostor = LocalKey(kid=kid)  # the realm's kid, another key pair

    assert identity.roles == {"operator"}
    assert await refusal(verifier, tampered(genuine)) == "signature"
    assert await refusal(verifier, unsigned(claims, kid=kid)) == "algorithm"
    assert await refusal(verifier, impostor.sign(claims)) == "signature"
    assert await refusal(verifier, LocalKey().sign(claims)) == "unknown-key"


async def test_a_token_with_only_an_unknown_role_carries_no_right(
    keycloak: KeycloakRealm,
) -> None:
    verifier = OidcVerifier(keycloak.config())

    auditor = (await verifier.verify(await keycloak.user_token("ulysse.auditor"))).principal()

    assert auditor.roles == frozenset()
    assert not auditor.has_any(["operator", "manager", "seller", "source"])


async def test_key_rotation_new_tokens_verify_after_one_refresh(
    keycloak: KeycloakRealm,
) -> None:
    verifier = OidcVerifier(keycloak.config(jwks_min_refresh_interval_s=0))
    before = await keycloak.user_token("olivia.operator")
    await verifier.verify(before)
    assert verifier.keys.fetches == 1

    async with keycloak.rotated_key() as new_kid:
        after = await keycloak.user_token("olivia.operator")
        assert jwt.get_unverified_header(after)["kid"] == new_kid
        assert jwt.get_unverified_header(before)["kid"] != new_kid

        assert (await verifier.verify(after)).roles == {"operator"}
        assert verifier.keys.fetches == 2  # exactly one refresh for the new kid
        assert (await verifier.verify(before)).roles == {"operator"}  # old key still published
        for _ in range(5):
            await verifier.verify(after)
        assert verifier.keys.fetches == 2

    # The rotated key is deleted: its tokens stop verifying once the keys are fetched again.
    fresh = OidcVerifier(keycloak.config())
    assert await refusal(fresh, after) == "unknown-key"
    assert (await fresh.verify(await keycloak.user_token("olivia.operator"))).subject
