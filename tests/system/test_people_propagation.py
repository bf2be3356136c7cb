"""Issue 14, people and sign-on, across services on PostgreSQL and Kafka: a token issued by
dispatch's people API works in qualify once qualify's worker applied the event; revoked (or its
person deactivated, or their roles changed) through dispatch, it is refused by qualify's API
process at the first request after the event is applied there, although qualify had cached it
(no 30-second cache period any more); a signed-in person deactivated in the directory is refused
though their access token is still valid. The propagation is measured (``record_property``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared.oidc import actor_id
from shared.settings import ServiceSettings
from shared.token_cache import DEFAULT_TTL_S
from tests.support.harness import System, eventually, run_system, settings_for
from tests.support.http_server import serve
from tests.support.infra import create_database, drop_database
from tests.support.oidc import AUDIENCE, LocalKey, claims_for

ISSUER = "https://login.example-group.test/realms/dealers"
SUBJECT = "f4c1d2e3-0000-4000-8000-00000000a11c"  # claims_for's


@asynccontextmanager
async def jwks_server(key: LocalKey) -> AsyncIterator[str]:
    async def jwks(_: Request) -> JSONResponse:
        return JSONResponse({"keys": [key.jwk()]})

    async with serve(Starlette(routes=[Route("/jwks", jwks)])) as base:
        yield f"{base}/jwks"


@asynccontextmanager
async def dispatch_and_qualify(
    kafka_bootstrap: str, jwks_url: str
) -> AsyncIterator[dict[str, ServiceSettings]]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    urls = {name: await create_database() for name in ("dispatch", "qualify")}
    try:
        yield {
            name: settings_for(
                name,
                database_url=url,
                bus="kafka",
                kafka_bootstrap_servers=kafka_bootstrap,
                topic_prefix=prefix,
                topic_partitions=2,
                oidc_issuer=ISSUER,
                oidc_audience=AUDIENCE,
                oidc_jwks_url=jwks_url,
            )
            for name, url in urls.items()
        }
    finally:
        for url in urls.values():
            await drop_database(url)


async def status_with(client: httpx.AsyncClient, token: str, path: str) -> int:
    response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
    return response.status_code


async def until_status(
    client: httpx.AsyncClient, token: str, path: str, expected: int, *, timeout_s: float = 30.0
) -> float:
    """Seconds until ``path`` answers ``expected`` for ``token`` (polled every 10 ms)."""
    start = time.perf_counter()

    async def probe() -> bool:
        return await status_with(client, token, path) == expected

    await eventually(probe, timeout_s=timeout_s, interval_s=0.01)
    return time.perf_counter() - start


def cached_tokens(system: System, name: str) -> int:
    return len(system.services[name].app.state.runtime.tokens)


@pytest.mark.postgres
@pytest.mark.kafka
async def test_tokens_and_people_propagate_and_revocation_is_immediate(
    kafka_bootstrap: str, record_property: Callable[[str, object], None]
) -> None:
    key = LocalKey()
    async with (
        jwks_server(key) as jwks_url,
        dispatch_and_qualify(kafka_bootstrap, jwks_url) as settings,
        run_system(settings) as system,
    ):
        dispatch, qualify = system.client("dispatch"), system.client("qualify")

        async def person(**body: Any) -> dict[str, Any]:
            created = await dispatch.post("/v1/people", json=body)
            assert created.status_code == 201, created.text
            return dict(created.json())

        async def token_of(person_id: str) -> tuple[str, str]:
            issued = await dispatch.post(f"/v1/people/{person_id}/tokens", json={})
            assert issued.status_code == 201, issued.text
            return str(issued.json()["id"]), str(issued.json()["token"])

        # Issued in dispatch, usable in qualify once its worker applied the event.
        olivia = await person(display_name="Olivia Opératrice", roles=["operator"])
        token_id, token = await token_of(olivia["id"])
        issue_s = await until_status(qualify, token, "/v1/queue", 200)
        assert await status_with(qualify, token, "/v1/queue") == 200
        assert cached_tokens(system, "qualify") >= 1  # qualify answers it from its cache now

        # Revoked in dispatch: refused by qualify as soon as the event is applied there, not
        # after qualify's cache period.
        revoked = await dispatch.delete(f"/v1/people/{olivia['id']}/tokens/{token_id}")
        assert revoked.status_code == 204
        assert await status_with(dispatch, token, "/v1/board") == 401  # dispatch: at once
        revoke_s = await until_status(qualify, token, "/v1/queue", 401)
        assert revoke_s < DEFAULT_TTL_S / 3

        # A change of roles reaches qualify's next request the same way.
        marc = await person(display_name="Marc Manager", roles=["operator"])
        _, marc_token = await token_of(marc["id"])
        await until_status(qualify, marc_token, "/v1/operators/me/stats", 200)
        assert await status_with(qualify, marc_token, "/v1/operators/x/stats") == 403  # cached
        promoted = await dispatch.patch(f"/v1/people/{marc['id']}", json={"roles": ["manager"]})
        assert promoted.status_code == 200
        roles_s = await until_status(qualify, marc_token, "/v1/operators/x/stats", 200)

        # Deactivated: every token refused everywhere.
        off = await dispatch.patch(f"/v1/people/{marc['id']}", json={"active": False})
        assert off.status_code == 200
        deactivate_s = await until_status(qualify, marc_token, "/v1/operators/x/stats", 401)
        assert deactivate_s < DEFAULT_TTL_S / 3

        # Single sign-on: the record wins over the claims; deactivated, refused at once.
        access = key.sign(claims_for(ISSUER, AUDIENCE, roles=["operator"], lifetime_s=3600))
        assert (
            await status_with(qualify, access, "/v1/operators/x/stats") == 403
        )  # claims: operator
        ada = await person(
            display_name="Ada Admin-Manager", roles=["manager"], sso={"subject": SUBJECT}
        )
        assert ada["id"] == actor_id(ISSUER, SUBJECT)
        await until_status(qualify, access, "/v1/operators/x/stats", 200)  # the record's role
        off = await dispatch.patch(f"/v1/people/{ada['id']}", json={"active": False})
        assert off.status_code == 200
        sso_s = await until_status(qualify, access, "/v1/operators/x/stats", 401)

        measured: Mapping[str, float] = {
            "issue_to_usable_in_qualify_s": issue_s,
            "revoke_to_refused_in_qualify_s": revoke_s,
            "roles_to_applied_in_qualify_s": roles_s,
            "deactivate_to_refused_in_qualify_s": deactivate_s,
            "sso_deactivate_to_refused_in_qualify_s": sso_s,
        }
        for name, seconds in measured.items():
            record_property(name, round(seconds, 3))
