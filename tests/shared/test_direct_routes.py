"""Direct routes (``shared.direct``): answered by the request middleware beside their FastAPI
route, with the same auth, problem+json answers, input guard, body limit, trace context, metrics
and last resort as every other route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.responses import JSONResponse, Response

from shared.api import require_roles
from shared.app import create_service_app
from shared.auth import Principal
from shared.direct import DirectRoute
from shared.errors import InvalidRequest
from tests.support.harness import DEV_TOKEN, SERVICES, migrate, settings_for

OPERATE = require_roles("operator", "manager")
Operator = Annotated[Principal, Depends(OPERATE)]

router = APIRouter()


@router.post("/v1/things")
async def post_thing(request: Request, _: Operator) -> Response:
    return JSONResponse({"by": "fastapi"}, status_code=202)


async def post_thing_directly(request: Request, principal: Principal) -> Response:
    body = await request.body()
    if body == b'{"bad": true}':
        raise InvalidRequest("Bad thing.")
    if body == b'{"boom": true}':
        raise RuntimeError("a bug, quoting Camille Durand")
    return JSONResponse({"by": "direct", "roles": sorted(principal.roles)}, status_code=202)


def _app(tmp_path: Path, direct: DirectRoute, *, max_body_bytes: int = 4096) -> FastAPI:
    settings = settings_for(
        "crm",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/c.db",
        max_body_bytes=max_body_bytes,
    )
    app = create_service_app(
        settings,
        infra=SERVICES["crm"].infra,
        routers=[router],
        title="t",
        description="t",
        direct_routes=[direct],
        configure_logs=False,
    )
    app.state.settings = settings  # for the migration (tests only)
    return app


THINGS = DirectRoute("POST", "/v1/things", "application/json", OPERATE, post_thing_directly)


@asynccontextmanager
async def _client(app: FastAPI, token: str | None = DEV_TOKEN) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    await migrate(app.state.settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t", headers=headers
        ) as client,
    ):
        yield client


async def test_json_goes_direct_other_media_types_to_the_fastapi_route(tmp_path: Path) -> None:
    async with _client(_app(tmp_path, THINGS)) as client:
        direct = await client.post(
            "/v1/things",
            content=b"{}",
            headers={"Content-Type": "application/json; charset=utf-8", "traceparent": _PARENT},
        )
        other = await client.post(
            "/v1/things", content=b"<x/>", headers={"Content-Type": "application/xml"}
        )
        metrics = (await client.get("/metrics")).text
    assert direct.status_code == 202
    assert direct.json()["by"] == "direct"
    assert "admin" in direct.json()["roles"]
    # Trace context continued, request id given, as on every route.
    assert direct.headers["traceparent"].split("-")[1] == _PARENT.split("-")[1]
    assert direct.headers["x-request-id"]
    assert other.status_code == 202
    assert other.json() == {"by": "fastapi"}
    assert 'route="/v1/things"' in metrics  # the template, as FastAPI's route would be labelled


async def test_direct_routes_check_the_callers_role(tmp_path: Path) -> None:
    app = _app(tmp_path, THINGS)
    async with _client(app, token=None) as client:
        anonymous = await client.post("/v1/things", json={})
        wrong = await client.post(
            "/v1/things", json={}, headers={"Authorization": "Bearer vo_unknown"}
        )
    for response in (anonymous, wrong):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["instance"] == "/v1/things"


async def test_problems_bugs_and_the_guards_answer_problem_json(tmp_path: Path) -> None:
    async with _client(_app(tmp_path, THINGS, max_body_bytes=1024)) as client:
        bad = await client.post("/v1/things", content=b'{"bad": true}', headers=_JSON)
        bug = await client.post("/v1/things", content=b'{"boom": true}', headers=_JSON)
        nul = await client.post("/v1/things", content=b'{"a": "\\u0000"}', headers=_JSON)
        large = await client.post(
            "/v1/things", content=b'{"a": "' + b"x" * 2000 + b'"}', headers=_JSON
        )
        after = await client.post("/v1/things", content=b"{}", headers=_JSON)
    assert (bad.status_code, bad.json()["detail"]) == (422, "Bad thing.")
    assert bug.status_code == 500  # the last resort, no message quoted
    assert "Camille" not in bug.text
    assert nul.status_code == 422
    assert nul.json()["errors"][0]["type"] == "control_character"
    assert large.status_code == 413
    for response in (bad, bug, nul, large):
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["traceparent"]
    assert after.status_code == 202


def test_a_direct_route_must_grant_what_its_fastapi_route_grants(tmp_path: Path) -> None:
    other_roles = DirectRoute(
        "POST", "/v1/things", "application/json", require_roles("manager"), post_thing_directly
    )
    with pytest.raises(ValueError, match="same roles"):
        _app(tmp_path, other_roles)
    no_route = DirectRoute("POST", "/v1/nothing", "application/json", OPERATE, post_thing_directly)
    with pytest.raises(ValueError, match="same roles"):
        _app(tmp_path, no_route)


_PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
_JSON = {"Content-Type": "application/json"}


@router.post("/v1/things/{thing_id}/poke")
async def poke_thing(thing_id: str, _: Operator) -> Response:
    return JSONResponse({"by": "fastapi", "id": thing_id})


@router.get("/v1/things/{thing_id}")
async def get_thing(thing_id: str, _: Operator) -> Response:
    return JSONResponse({"by": "fastapi", "id": thing_id})


async def poke_thing_directly(request: Request, principal: Principal) -> Response:
    return JSONResponse({"by": "direct", "id": request.path_params["thing_id"]})


POKE = DirectRoute("POST", "/v1/things/{thing_id}/poke", None, OPERATE, poke_thing_directly)
GET_THING = DirectRoute("GET", "/v1/things/{thing_id}", None, OPERATE, poke_thing_directly)


async def test_templates_take_their_parameters_and_label_by_the_template(tmp_path: Path) -> None:
    app = _app_with(tmp_path, [THINGS, POKE, GET_THING])
    async with _client(app) as client:
        poked = await client.post("/v1/things/t-1/poke")  # no body, no media type
        typed = await client.post("/v1/things/t%C3%A9/poke", json={"any": "body"})
        got = await client.get("/v1/things/t-2")
        head = await client.head("/v1/things/t-2")  # FastAPI answers it (a 405)
        empty = await client.post("/v1/things//poke")
        trailing = await client.post("/v1/things/t-1/poke/")
        other = await client.post("/v1/things/t-1/prod")
        metrics = (await client.get("/metrics")).text
    assert poked.json() == {"by": "direct", "id": "t-1"}
    assert typed.json() == {"by": "direct", "id": "té"}
    assert got.json() == {"by": "direct", "id": "t-2"}
    assert head.status_code == 405
    for response in (empty, trailing, other):  # as FastAPI: no route
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
    assert 'route="/v1/things/{thing_id}/poke"' in metrics
    assert 'route="/v1/things/{thing_id}"' in metrics
    assert "t-1" not in metrics


async def test_a_template_refuses_an_anonymous_caller(tmp_path: Path) -> None:
    async with _client(_app_with(tmp_path, [POKE]), token=None) as client:
        anonymous = await client.post("/v1/things/t-1/poke")
    assert anonymous.status_code == 401
    assert anonymous.json()["instance"] == "/v1/things/t-1/poke"


widgets = APIRouter()


@widgets.get("/v1/widgets/mine")
async def my_widgets(_: Operator) -> Response:
    return JSONResponse({})


@widgets.get("/v1/widgets/{widget_id}")
async def get_widget(widget_id: str, _: Operator) -> Response:
    return JSONResponse({})


def test_a_template_must_not_take_another_routes_paths(tmp_path: Path) -> None:
    widget = DirectRoute("GET", "/v1/widgets/{widget_id}", None, OPERATE, poke_thing_directly)
    with pytest.raises(ValueError, match="would take /v1/widgets/mine"):
        _app_with(tmp_path, [widget], routers=[widgets])
    with pytest.raises(ValueError, match="whole segment"):
        DirectRoute("POST", "/v1/things/t-{thing_id}", None, OPERATE, post_thing_directly)


def _app_with(
    tmp_path: Path, directs: list[DirectRoute], *, routers: list[APIRouter] | None = None
) -> FastAPI:
    settings = settings_for(
        "crm", database_url=f"sqlite+aiosqlite:///{tmp_path}/c.db", max_body_bytes=4096
    )
    app = create_service_app(
        settings,
        infra=SERVICES["crm"].infra,
        routers=routers or [router],
        title="t",
        description="t",
        direct_routes=directs,
        configure_logs=False,
    )
    app.state.settings = settings  # for the migration (tests only)
    return app
