"""HTTP API of access and portability exports (managers)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse

from crm.deps import Manager
from crm.privacy import exports
from crm.privacy.repository import ExportRepository
from crm.privacy.schemas import ExportProgress
from shared.api import AUTH_PROBLEMS, NowDep, OutboxDep, SessionDep, problem_responses
from shared.errors import NotFound

router = APIRouter(prefix="/v1/clients", tags=["privacy"], responses=AUTH_PROBLEMS)

_UNKNOWN = problem_responses(NotFound, s404="Unknown client, or no export requested")
_RETRY_AFTER_S = "2"


@router.post(
    "/{client_id}/export",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ExportProgress,
    summary="Gather everything every service holds on the client (Art. 15/20)",
    responses=_UNKNOWN,
)
async def request_export(
    client_id: str,
    session: SessionDep,
    outbox: OutboxDep,
    now: NowDep,
    principal: Manager,
    response: Response,
) -> ExportProgress:
    request = await exports.request_export(
        session, outbox, client_id=client_id, requested_by=principal.token_id, now=now
    )
    response.headers["Retry-After"] = _RETRY_AFTER_S
    response.headers["Location"] = f"/v1/clients/{client_id}/export"
    return await exports.progress(session, request)


@router.get(
    "/{client_id}/export",
    summary="The export document (200) once every service answered, else its progress (202)",
    responses={
        **_UNKNOWN,
        200: {"description": "The whole document; `portability.sections` marks Art. 20 data"},
        202: {"description": "Still gathering", "model": ExportProgress},
    },
)
async def get_export(client_id: str, session: SessionDep, _: Manager) -> JSONResponse:
    request = await ExportRepository.from_session(session).latest(client_id)
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
