"""The shared HTTP layer keeps the documented contract for every route of every service (issue 11,
items 2, 5 and 6): problem+json 500 with the keep-alive connection still usable, 503 for an
outage, 415 for a JSON body of another type, ``Allow`` naming every method of a path,
``"location": "query"`` for a query parameter, 422 for control characters in paths, query
parameters and JSON strings, forged cursors and out-of-range instants refused with 422."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import httpx
import pytest
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.exc import DBAPIError

from shared.db.types import InstantOutOfRange, UtcDateTime
from shared.errors import validation_errors
from shared.instants import Instant
from shared.pagination import decode_cursor, encode_cursor
from tests.support.probe_app import probe_client, probe_server, probe_settings


class Thing(BaseModel):
    name: str = Field(max_length=100)
    note: str | None = None
    tags: list[str] = []


class Dated(BaseModel):
    received_at: Instant


router = APIRouter()


@router.get("/things")
async def list_things(limit: Annotated[int, Query(ge=1, le=10)] = 5) -> dict[str, int]:
    return {"limit": limit}


@router.post("/things", status_code=201)
async def create_thing(thing: Thing) -> dict[str, Any]:
    return thing.model_dump()


@router.delete("/things/{thing_id}", status_code=204)
async def delete_thing(thing_id: str) -> None:
    return None


@router.get("/pages")
async def page(cursor: Annotated[str | None, Query(max_length=600)] = None) -> dict[str, str]:
    if cursor is None:
        return {"next": encode_cursor(datetime(2026, 1, 2, 3, 4, tzinfo=UTC), "row-1")}
    moment, key = decode_cursor(cursor)
    return {"moment": moment.isoformat(), "key": key}


@router.post("/dated")
async def dated(body: Dated) -> dict[str, str]:
    return {"received_at": body.received_at.isoformat()}


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("a bug, with a value: Durand 06 12 34 56 78")


@router.get("/database-gone")
async def database_gone() -> None:
    cause = asyncpg.exceptions.AdminShutdownError("terminating connection")
    raise DBAPIError("SELECT 1", None, cause)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with probe_client(probe_settings(tmp_path), [router]) as built:
        yield built


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


# --- last resort (item 2) ---------------------------------------------------------------


async def test_an_unhandled_error_is_a_problem_500_without_its_message(
    client: httpx.AsyncClient,
) -> None:
    body = problem(await client.get("/boom"), 500)
    assert "Durand" not in json.dumps(body)
    assert (await client.get("/things")).status_code == 200  # the app goes on


async def test_a_database_outage_is_a_503_with_retry_after(client: httpx.AsyncClient) -> None:
    response = await client.get("/database-gone")
    problem(response, 503)
    assert response.headers["retry-after"] == "5"


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str
) -> tuple[int, bytes]:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: keep-alive\r\n\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return status, await asyncio.wait_for(reader.readexactly(length), 10)


async def test_the_keep_alive_connection_survives_an_unhandled_error(tmp_path: Path) -> None:
    async with probe_server(probe_settings(tmp_path), [router]) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            status, body = await _exchange(reader, writer, "/boom")
            assert status == 500
            assert json.loads(body)["type"] == "/problems/internal-error"
            # The same connection answers the next request.
            status, body = await _exchange(reader, writer, "/things?limit=2")
            assert status == 200
            assert json.loads(body) == {"limit": 2}
        finally:
            writer.close()


# --- contract drift (item 6) -------------------------------------------------------------


async def test_a_json_route_refuses_another_content_type_with_415(
    client: httpx.AsyncClient,
) -> None:
    content = json.dumps({"name": "x"}).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        response = await client.post(
            "/things", content=content, headers={"content-type": content_type}
        )
        body = problem(response, 415)
        assert body["type"] == "/problems/unsupported-media-type"
    accepted = await client.post(
        "/things", content=content, headers={"content-type": "application/json; charset=utf-8"}
    )
    assert accepted.status_code == 201
    vendor = await client.post(
        "/things", content=content, headers={"content-type": "application/vnd.x+json"}
    )
    assert vendor.status_code == 201
    # A JSON body that fails validation is still a 422.
    problem(await client.post("/things", json={"name": 5}), 422)


async def test_405_allow_lists_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    response = await client.put("/things", json={})
    problem(response, 405)
    allowed = {method.strip() for method in response.headers["allow"].split(",")}
    assert {"GET", "POST"} <= allowed
    assert "DELETE" not in allowed  # /things/{id} is another path


async def test_a_query_parameter_error_says_query(client: httpx.AsyncClient) -> None:
    body = problem(await client.get("/things", params={"limit": "many"}), 422)
    assert body["errors"][0]["location"] == "query"
    assert body["errors"][0]["field"] == "limit"


def test_errors_of_a_model_validated_by_hand_are_placed_in_the_body() -> None:
    with pytest.raises(ValidationError) as caught:
        Thing.model_validate_json(b'{"name": 5, "tags": [1]}')
    errors = validation_errors(caught.value.errors(include_input=False))
    assert {(error["field"], error["location"]) for error in errors} == {
        ("name", "body"),
        ("tags.0", "body"),
    }


# --- control characters (item 5) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"name": "Du\u0000rand"}, "name"),
        ({"name": "ok", "tags": ["a", "b\u0001"]}, "tags.1"),
        ({"name": "ok", "note": "bell\u0007"}, "note"),
        ({"name": "ok", "note": "form\u000cfeed"}, "note"),
        ({"name": "lone \ud800 surrogate"}, "name"),
        ({"name": "ok", "extra\u0000key": 1}, "body"),
    ],
)
async def test_control_characters_in_json_strings_are_refused(
    client: httpx.AsyncClient, document: dict[str, Any], field: str
) -> None:
    content = json.dumps(document).encode()  # ASCII: every control character as an escape
    response = await client.post(
        "/things", content=content, headers={"content-type": "application/json"}
    )
    body = problem(response, 422)
    assert body["errors"] == [
        {
            "field": field,
            "location": "body",
            "type": "control_character",
            "message": "control characters (NUL…) are not accepted",
        }
    ]


async def test_lines_tabs_and_lookalikes_are_accepted(client: httpx.AsyncClient) -> None:
    document = {
        "name": "Élodie \\u0000 not a NUL",  # a backslash and the text u0000
        "note": "line one\nline two\ttabbed\r\n😀",
    }
    response = await client.post("/things", json=document)
    assert response.status_code == 201, response.text
    assert response.json()["name"] == document["name"]


async def test_control_characters_in_query_and_path_are_refused(
    client: httpx.AsyncClient,
) -> None:
    body = problem(await client.get("/things?limit=%00"), 422)
    assert body["errors"][0]["location"] == "query"
    assert body["errors"][0]["field"] == "limit"
    body = problem(await client.get("/pages?cursor=abc%0Adef"), 422)
    assert body["errors"][0]["location"] == "query"
    body = problem(await client.delete("/things/abc%00def"), 422)
    assert body["errors"][0]["location"] == "path"
    assert (await client.delete("/things/abc%20def")).status_code == 204


# --- cursors and instants (item 2) --------------------------------------------------------


def forge(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


FORGED = {
    "naive instant": forge(["2026-01-02T03:04:00", "row-1"]),
    "extreme offset": forge(["9999-12-31T23:59:59-14:00", "row-1"]),
    "year one": forge(["0001-01-01T00:00:00+14:00", "row-1"]),
    "after 2100": forge(["2150-01-01T00:00:00+00:00", "row-1"]),
    "number key": forge(["2026-01-02T03:04:00+00:00", 7]),
    "empty key": forge(["2026-01-02T03:04:00+00:00", ""]),
    "control in key": forge(["2026-01-02T03:04:00+00:00", "row\u0000"]),
    "three parts": forge(["2026-01-02T03:04:00+00:00", "row-1", 99]),
    "an object": forge({"at": "2026-01-02T03:04:00+00:00"}),
    "not base64": "%%%not-base64%%%",
    "not json": base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    "too long": forge(["2026-01-02T03:04:00+00:00", "k" * 190]) + "A" * 300,
}


@pytest.mark.parametrize("label", sorted(FORGED))
async def test_a_forged_cursor_is_a_422(client: httpx.AsyncClient, label: str) -> None:
    body = problem(await client.get("/pages", params={"cursor": FORGED[label]}), 422)
    assert body["errors"][0]["field"] == "cursor"
    assert body["errors"][0]["type"] == "invalid_cursor"


async def test_a_cursor_the_api_made_reads_back_in_utc(client: httpx.AsyncClient) -> None:
    made = (await client.get("/pages")).json()["next"]
    assert (await client.get("/pages", params={"cursor": made})).json() == {
        "moment": "2026-01-02T03:04:00+00:00",
        "key": "row-1",
    }
    paris = encode_cursor(datetime(2026, 1, 2, 4, 4, tzinfo=timezone(timedelta(hours=1))), "k")
    assert decode_cursor(paris) == (datetime(2026, 1, 2, 3, 4, tzinfo=UTC), "k")


@pytest.mark.parametrize(
    "value",
    ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "1999-12-31T23:59:59Z"],
)
async def test_instants_out_of_range_are_a_422(client: httpx.AsyncClient, value: str) -> None:
    body = problem(await client.post("/dated", json={"received_at": value}), 422)
    assert body["errors"][0]["type"] == "instant_out_of_range"
    assert body["errors"][0]["field"] == "received_at"


async def test_a_naive_instant_is_a_422_and_an_aware_one_comes_in_utc(
    client: httpx.AsyncClient,
) -> None:
    naive = problem(await client.post("/dated", json={"received_at": "2026-01-02T03:04:00"}), 422)
    assert naive["errors"][0]["type"] == "timezone_aware"
    response = await client.post("/dated", json={"received_at": "2026-01-02T04:04:00+01:00"})
    assert response.json() == {"received_at": "2026-01-02T03:04:00+00:00"}


def test_the_utc_column_type_explains_an_instant_it_cannot_convert() -> None:
    column = UtcDateTime()
    extreme = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-14)))
    with pytest.raises(InstantOutOfRange, match="bound the input"):
        column.process_bind_param(extreme, None)  # type: ignore[arg-type]
