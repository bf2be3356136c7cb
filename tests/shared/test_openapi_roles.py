"""``x-roles``: each operation's OpenAPI entry names the roles that reach its handler, read from the
``require_roles`` dependencies of the route and of its router (intersected when nested), with 401
and 403 documented even where the router forgot them; a route without a role check has none."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from shared.api import require_roles
from shared.auth import Principal
from tests.support.probe_app import probe_app, probe_settings

Manager = Annotated[Principal, Depends(require_roles("manager"))]
Staff = Annotated[Principal, Depends(require_roles("operator", "manager"))]


async def staff_and_manager(_: Staff, __: Manager) -> None:
    return None


router = APIRouter(prefix="/v1")
guarded = APIRouter(prefix="/v1/admin", dependencies=[Depends(require_roles("seller"))])


@router.get("/open")
async def open_route() -> dict[str, str]:
    return {}


@router.get("/staff", responses={401: {"description": "hand-written, without a body"}})
async def staff_route(_: Staff) -> dict[str, str]:
    return {}


@router.post("/nested")
async def nested_route(_: Annotated[None, Depends(staff_and_manager)]) -> dict[str, str]:
    return {}


@guarded.delete("/thing")
async def router_level() -> None:
    return None


def test_each_operation_names_its_roles(tmp_path: Path) -> None:
    document: dict[str, Any] = probe_app(probe_settings(tmp_path), [router, guarded]).openapi()
    paths = document["paths"]
    assert "x-roles" not in paths["/v1/open"]["get"]
    assert "x-roles" not in paths["/healthz"]["get"]
    assert paths["/v1/staff"]["get"]["x-roles"] == ["admin", "manager", "operator"]
    assert paths["/v1/nested"]["post"]["x-roles"] == ["admin", "manager"]
    assert paths["/v1/admin/thing"]["delete"]["x-roles"] == ["admin", "seller"]
    for path, method in (("/v1/staff", "get"), ("/v1/admin/thing", "delete")):
        responses = paths[path][method]["responses"]
        for status in ("401", "403"):
            assert "application/problem+json" in responses[status]["content"], (path, status)
    assert paths["/v1/staff"]["get"]["responses"]["401"]["description"].startswith("hand-written")
    assert "401" not in paths["/v1/open"]["get"]["responses"]
