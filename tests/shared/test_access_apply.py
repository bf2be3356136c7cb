"""Applying the access events to a service's tables, and authenticating against them: idempotent,
a person's newer version wins whatever the order, a revocation is final, and a person's token has
the person's current rights (none once deactivated, or before the person is known)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.access.apply import apply_person, apply_token_issued, apply_token_revoked
from shared.access.repository import AccessRepository
from shared.auth import Principal, authenticate, hash_token
from shared.db import create_engine, make_session_factory, session_scope
from shared.db.migrate import upgrade
from shared.events.access import PersonChangedV1, TokenIssuedV1, TokenRevokedV1
from shared.oidc import actor_id
from tests.support.harness import SERVICES

INFRA = SERVICES["qualify"].infra
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
TOKEN = "vo_person-token-of-paul"


def person(version: int, **values: object) -> PersonChangedV1:
    fields: dict[str, object] = {
        "person_id": "p-paul",
        "version": version,
        "kind": "person",
        "name": "Paul Opérateur",
        "roles": ["operator"],
        "sites": ["lyon"],
        "active": True,
        "change": "created" if version == 1 else "updated",
        "changed_at": NOW + timedelta(minutes=version),
    }
    fields.update(values)
    return PersonChangedV1.model_validate(fields)


ISSUED = TokenIssuedV1(
    token_id="tok-1",
    person_id="p-paul",
    token_hash=hash_token(TOKEN),
    label="laptop",
    issued_at=NOW,
)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'qualify.db'}"
    await asyncio.to_thread(upgrade, SERVICES["qualify"].migrations, url)
    created = create_engine(url)
    yield created
    await created.dispose()


async def apply(engine: AsyncEngine, *events: object) -> list[bool]:
    results = []
    async with session_scope(make_session_factory(engine)) as session:
        for event in events:
            if isinstance(event, PersonChangedV1):
                results.append(await apply_person(session, INFRA, event))
            elif isinstance(event, TokenIssuedV1):
                results.append(await apply_token_issued(session, INFRA, event))
            elif isinstance(event, TokenRevokedV1):
                results.append(await apply_token_revoked(session, INFRA, event))
    return results


async def who(engine: AsyncEngine, token: str = TOKEN, now: datetime = NOW) -> Principal | None:
    async with make_session_factory(engine)() as session:
        return await authenticate(session, INFRA.api_token, INFRA.access_person, token, now)


async def test_a_person_token_has_the_person_s_current_rights(engine: AsyncEngine) -> None:
    assert await apply(engine, ISSUED) == [True]
    assert await who(engine) is None  # the person's record has not arrived yet: no right

    await apply(engine, person(1))
    paul = await who(engine)
    assert paul is not None
    assert (paul.token_id, paul.person_id, paul.credential_id) == ("p-paul", "p-paul", "tok-1")
    assert (paul.name, paul.roles, paul.sites) == (
        "Paul Opérateur",
        frozenset({"operator"}),
        frozenset({"lyon"}),
    )

    await apply(engine, person(2, roles=["manager", "operator"], sites=None))
    promoted = await who(engine)
    assert promoted is not None
    assert promoted.roles == frozenset({"manager", "operator"})
    assert promoted.sites is None  # not limited any more

    await apply(engine, person(3, active=False, change="deactivated"))
    assert await who(engine) is None


async def test_versions_decide_whatever_the_order(engine: AsyncEngine) -> None:
    assert await apply(engine, person(3, name="Paul v3"), person(2, name="Paul v2")) == [
        True,
        False,
    ]
    assert await apply(engine, person(3, name="Paul v3")) == [False]  # a redelivery
    async with make_session_factory(engine)() as session:
        names = await AccessRepository(session, INFRA).names(["p-paul", "nobody"])
    assert names == {"p-paul": "Paul v3"}


async def test_a_revocation_is_final(engine: AsyncEngine) -> None:
    revoked = TokenRevokedV1(token_id="tok-1", person_id="p-paul", revoked_at=NOW)
    assert await apply(engine, person(1), ISSUED, revoked) == [True, True, True]
    assert await who(engine) is None
    # Redelivered, or re-published late: nothing changes, the token stays revoked.
    assert await apply(engine, revoked, ISSUED) == [False, False]
    assert await who(engine) is None
    # A revocation of a token this service never had: nothing to do.
    unknown = TokenRevokedV1(token_id="tok-x", person_id="p-paul", revoked_at=NOW)
    assert await apply(engine, unknown) == [False]


async def test_an_expired_token_is_refused(engine: AsyncEngine) -> None:
    expiring = ISSUED.model_copy(update={"expires_at": NOW + timedelta(days=30)})
    await apply(engine, person(1), expiring)
    before = await who(engine, now=NOW + timedelta(days=29))
    assert before is not None
    assert before.expires_at == NOW + timedelta(days=30)
    assert await who(engine, now=NOW + timedelta(days=30)) is None


async def test_a_sign_in_finds_its_person_by_the_identity_s_key(engine: AsyncEngine) -> None:
    issuer, subject = "https://login.example.test/realms/dealers", "sub-123"
    key = actor_id(issuer, subject)
    await apply(engine, person(1, sso_key=key))
    async with make_session_factory(engine)() as session:
        repository = AccessRepository(session, INFRA)
        found = await repository.person_by_sso_key(key)
        missing = await repository.person_by_sso_key(actor_id(issuer, "someone-else"))
    assert found is not None
    assert (found.id, found.roles, found.active) == ("p-paul", frozenset({"operator"}), True)
    assert missing is None
