"""The documents say what the shared HTTP layer answers (422 problem+json everywhere, 413 and 415
where a JSON body is taken, a problem+json body on every documented error), and a JSON body that
is not even UTF-8 is the same 422 as any malformed JSON, not FastAPI's undocumented 400."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from tests.support.probe_app import probe_app, probe_client, probe_settings

PROBLEM = "application/problem+json"


class Thing(BaseModel):
    name: str


router = APIRouter()


@router.post("/things", responses={409: {"description": "hand-written, no body"}})
async def create_thing(thing: Thing) -> dict[str, str]:
    return {"name": thing.name}


@router.get("/plain")
async def plain() -> dict[str, str]:
    return {}


def test_the_document_states_the_shared_answers(tmp_path: Path) -> None:
    document: dict[str, Any] = probe_app(probe_settings(tmp_path), [router]).openapi()
    things = document["paths"]["/things"]["post"]["responses"]
    for status in ("409", "413", "415", "422"):
        assert PROBLEM in things[status]["content"], status
    assert things["409"]["description"] == "hand-written, no body"
    plain_answers = document["paths"]["/plain"]["get"]["responses"]
    assert set(plain_answers) == {"200", "422"}  # the input guard: control characters
    assert "HTTPValidationError" not in document["components"].get("schemas", {})


async def test_a_body_that_is_not_utf8_is_a_422(tmp_path: Path) -> None:
    async with probe_client(probe_settings(tmp_path), [router]) as client:
        response = await client.post(
            "/things", content=b'{"name": "\xff\xfe"}', headers={"content-type": "application/json"}
        )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["type"] == "json_invalid"
