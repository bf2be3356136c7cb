"""Single sign-on with the people directory: a signed-in person who has a record is that record
(its roles, sites and id replace the token's claims: the record wins), a deactivated record is
refused at the next request although the access token is still valid, and without a record the
claims decide as before. Through the shared app factory, on a database migrated by a service's
history (its triggers), so the lookups are cached and forgotten as in production."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest

from shared.access.apply import apply_person
from shared.db import create_engine, make_session_factory, session_scope
from shared.db.migrate import upgrade
from shared.events.access import PersonChangedV1
from shared.oidc import actor_id
from tests.shared.test_oidc_require_roles import ISSUER, keycloak_settings, local_keys_hook
from tests.support.harness import SERVICES
from tests.support.oidc import AUDIENCE, LocalKey, claims_for, require_keycloak
from tests.support.sso_app import bearer, sso_client, sso_settings

SUBJECT = "f4c1d2e3-0000-4000-8000-00000000a11c"  # claims_for's
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


async def record(url: str, version: int, **values: object) -> None:
    fields: dict[str, object] = {
        "person_id": "p-alice",
        "version": version,
        "kind": "person",
        "name": "Alice (directory)",
        "roles": ["manager"],
        "sites": ["paris-sud"],
        "active": True,
        "sso_key": actor_id(ISSUER, SUBJECT),
        "change": "created" if version == 1 else "updated",
        "changed_at": NOW,
    }
    fields.update(values)
    engine = create_engine(url)
    try:
        async with session_scope(make_session_factory(engine)) as session:
            await apply_person(
                session, SERVICES["ingest"].infra, PersonChangedV1.model_validate(fields)
            )
    finally:
        await engine.dispose()


async def test_the_directory_s_record_wins_over_the_claims(tmp_path: Path) -> None:
    key = LocalKey()
    settings = sso_settings(tmp_path, oidc_issuer=ISSUER, oidc_audience=AUDIENCE)
    url = settings.resolved_database_url()
    await asyncio.to_thread(upgrade, SERVICES["ingest"].migrations, url)
    token = key.sign(claims_for(ISSUER, AUDIENCE, roles=["operator"], sites=["lyon-est"]))

    async with sso_client(settings, lifespan_hooks=[local_keys_hook(key)]) as client:
        # No record: the claims decide, the actor is derived from issuer and subject.
        by_claims = await client.get("/v1/operator-only", headers=bearer(token))
        assert by_claims.status_code == 200
        assert by_claims.json() == {
            "actor": actor_id(ISSUER, SUBJECT),
            "roles": ["operator"],
            "sites": ["lyon-est"],
            "via": "oidc",
        }
        assert (await client.get("/v1/manager-only", headers=bearer(token))).status_code == 403

        # A record appears (its worker applied the directory's event): it wins at once.
        await record(url, 1)
        as_manager = await client.get("/v1/manager-only", headers=bearer(token))
        assert as_manager.status_code == 200
        assert as_manager.json() == {
            "actor": "p-alice",
            "roles": ["manager"],
            "sites": ["paris-sud"],
            "via": "oidc",
        }
        # The token's operator role no longer counts: the record has none.
        assert (await client.get("/v1/operator-only", headers=bearer(token))).status_code == 403

        # Deactivated: refused at the next request, though the access token is still valid.
        await record(url, 2, active=False, change="deactivated")
        refused = await client.get("/v1/manager-only", headers=bearer(token))
        assert refused.status_code == 401
        assert refused.json()["detail"] == "This person's access has been withdrawn."
        assert "Alice" not in refused.text

        # Reactivated with other roles: accepted again, as the record says.
        await record(url, 3, roles=["operator"], sites=None, change="reactivated")
        back = await client.get("/v1/operator-only", headers=bearer(token))
        assert back.status_code == 200
        assert back.json()["sites"] is None


@pytest.mark.oidc
async def test_a_keycloak_sign_in_takes_its_directory_record(tmp_path: Path) -> None:
    """The same rule with a real provider's tokens: Olivia is an operator at Keycloak; the
    directory makes her a manager, then deactivates her while her access token is valid."""
    keycloak = await require_keycloak()
    settings = keycloak_settings(tmp_path, keycloak)
    url = settings.resolved_database_url()
    await asyncio.to_thread(upgrade, SERVICES["ingest"].migrations, url)
    token = await keycloak.user_token("olivia.operator")
    subject = jwt.decode(token, options={"verify_signature": False})["sub"]
    key = actor_id(keycloak.issuer, subject)

    async with sso_client(settings) as client:
        assert (await client.get("/v1/manager-only", headers=bearer(token))).status_code == 403
        await record(url, 1, person_id="p-olivia", sso_key=key, sites=None)
        promoted = await client.get("/v1/manager-only", headers=bearer(token))
        assert promoted.status_code == 200
        assert promoted.json()["actor"] == "p-olivia"
        await record(url, 2, person_id="p-olivia", sso_key=key, active=False)
        assert (await client.get("/v1/manager-only", headers=bearer(token))).status_code == 401
