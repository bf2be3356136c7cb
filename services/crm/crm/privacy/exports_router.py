"""HTTP API of access and portability exports (managers)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status
from fastapi.responses import JSONResponse

from crm.privacy import exports
from crm.privacy.exports import ExportProgress
from shared.api import SessionDep, require_roles
from shared.auth import Principal
from shared.errors import NotFound

router = APIRouter(prefix="/v1/clients", tags=["privacy"])

Manager = Annotated[Principal, Depends(require_roles("manager"))]

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid token (problem+json)"},
    403: {"description": "Not a manager (problem+json)"},
    404: {"description": "Unknown client, or no export requested (problem+json)"},
}
_RETRY_AFTER_S = "2"


@router.post(
    "/{client_id}/export",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ExportProgress,
    summary="Gather everything every service holds on the client (Art. 15/20)",
    responses=_PROBLEMS,
)
async def request_export(
    client_id: str, session: SessionDep, principal: Manager, response: Response
) -> ExportProgress:
    request = await exports.request_export(
        session, client_id=client_id, requested_by=principal.token_id
    )
    response.headers["Retry-After"] = _RETRY_AFTER_S
    response.headers["Location"] = f"/v1/clients/{client_id}/export"
    return await exports.progress(session, request)


@router.get(
    "/{client_id}/export",
    summary="The export document (200) once every service answered, else its progress (202)",
    responses={
        **_PROBLEMS,
        200: {"description": "The whole document; `portability.sections` marks Art. 20 data"},
        202: {"description": "Still gathering", "model": ExportProgress},
    },
)
async def get_export(client_id: str, session: SessionDep, _: Manager) -> JSONResponse:
    request = await exports.latest_request(session, client_id)
    if request is None:
        raise NotFound("No export was requested for this client: POST it first.")
    if request.completed_at is None:
        progress = await exports.progress(session, request)
        return JSONResponse(
            progress.model_dump(mode="json"),
            status_code=status.HTTP_202_ACCEPTED,
            headers={"Retry-After": _RETRY_AFTER_S},
        )
    return JSONResponse(await exports.document(session, request))
