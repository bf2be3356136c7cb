"""``POST /v1/leads`` with a JSON body is answered directly by the request middleware
(``shared.direct``); without a media type, or as ADF, by the FastAPI route. Both answer alike,
and the direct path checks the caller's token on every request: a revoked token is refused at
once, though it was cached a request earlier."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from ingest.models import infra
from shared.auth import store_token
from shared.direct import DirectRoutes
from shared.runtime import Runtime
from tests.ingest.conftest import IngestFactory
from tests.support.clock import TUESDAY_11H, Clock


def _lead(ref: str) -> dict[str, Any]:
    return {
        "source": "api",
        "source_ref": ref,
        "contact": {"first_name": "Camille", "phone": "06 12 34 56 78"},
        "vehicle": {"make": "Renault", "model": "Clio"},
    }


@pytest.fixture
def direct_answers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths answered by a direct route."""
    answered: list[str] = []
    answer = DirectRoutes.answer

    async def counting(self: DirectRoutes, route: Any, *args: Any) -> None:
        answered.append(route.path)
        await answer(self, route, *args)

    monkeypatch.setattr(DirectRoutes, "answer", counting)
    return answered


async def test_json_goes_direct_and_answers_as_the_fastapi_route(
    ingest_service: IngestFactory, direct_answers: list[str]
) -> None:
    async with ingest_service(clock=Clock(TUESDAY_11H)) as service:
        direct = await service.client.post("/v1/leads", json=_lead("d-1"))
        assert direct_answers == ["/v1/leads"]
        untyped = await service.client.post(
            "/v1/leads",
            content=b'{"source": "api", "source_ref": "d-2", "contact": '
            b'{"first_name": "Camille", "phone": "06 12 34 56 78"}, "vehicle": {}}',
            headers={"Content-Type": ""},
        )
        assert direct_answers == ["/v1/leads"]  # no media type: FastAPI's route
        replay = await service.client.post("/v1/leads", json=_lead("d-1"))
        invalid = await service.client.post("/v1/leads", json={"source": "api"})
        stored = await service.client.get(f"/v1/leads/{direct.json()['id']}")
    assert direct.status_code == untyped.status_code == 202
    assert direct.headers["content-type"] == untyped.headers["content-type"]
    assert direct.json()["status"] == untyped.json()["status"] == "accepted"
    assert replay.json() == {"id": direct.json()["id"], "status": "duplicate"}
    assert invalid.status_code == 422
    assert invalid.headers["content-type"] == "application/problem+json"
    assert invalid.json()["instance"] == "/v1/leads"
    assert stored.json()["received_at"].startswith("2026-")  # the runtime's clock
    assert len(direct_answers) == 3


async def test_a_revoked_token_is_refused_by_the_direct_intake_at_once(
    ingest_service: IngestFactory, direct_answers: list[str]
) -> None:
    token = "vo_source-token-to-revoke"
    async with ingest_service() as service:
        runtime: Runtime[Any] = service.app.state.runtime
        async with runtime.session_factory() as session, session.begin():
            await store_token(
                session, infra.api_token, token=token, name="source", roles={"source"}
            )
        source = service.client_as(token)
        first = await source.post("/v1/leads", json=_lead("r-1"))
        again = await source.post("/v1/leads", json=_lead("r-2"))  # answered from the cache
        async with runtime.session_factory() as session, session.begin():
            await session.execute(
                update(infra.api_token)
                .values(revoked_at=TUESDAY_11H)
                .where(infra.api_token.c.name == "source")
            )
        revoked = await source.post("/v1/leads", json=_lead("r-3"))
    assert (first.status_code, again.status_code) == (202, 202)
    assert revoked.status_code == 401
    assert revoked.headers["content-type"] == "application/problem+json"
    assert len(direct_answers) == 3
