"""HTTP API of GDPR erasure requests (managers)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import select

from crm.models import retention_run
from crm.privacy import objections, service as privacy_service
from crm.privacy.objections import ObjectionIn, ObjectionOut
from crm.privacy.repository import ErasureRepository
from crm.privacy.retention import run_retention
from crm.privacy.schemas import (
    ErasureRequestIn,
    ErasureRequestOut,
    ErasureRequestPage,
    RetentionRunIn,
    RetentionRunOut,
    RetentionRunPage,
)
from crm.settings import CrmSettings
from shared.api import RuntimeDep, SessionDep, require_roles
from shared.auth import Principal
from shared.clock import utcnow
from shared.errors import InvalidRequest, NotFound
from shared.runtime import Runtime

router = APIRouter(prefix="/v1/privacy", tags=["privacy"])

Manager = Annotated[Principal, Depends(require_roles("manager"))]

_PROBLEMS: dict[int | str, dict[str, str]] = {
    401: {"description": "No valid token (problem+json)"},
    403: {"description": "Not a manager (problem+json)"},
    404: {"description": "Unknown client or request (problem+json)"},
    422: {"description": "Invalid fields (problem+json)"},
}


@router.post(
    "/erasure-requests",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ErasureRequestOut,
    summary="Erase a client everywhere (Art. 17); asking again returns the same request",
    responses={**_PROBLEMS, 200: {"description": "The existing request for this client"}},
)
async def create_erasure_request(
    body: ErasureRequestIn,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Manager,
    response: Response,
) -> ErasureRequestOut:
    request, created = await privacy_service.request_erasure(
        session,
        client_id=body.client_id,
        reason=body.reason,
        requested_by=principal.token_id,
        hmac_key=runtime.settings.privacy_hmac_key.get_secret_value().encode(),
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return await privacy_service.describe(session, request, now=utcnow())


@router.get(
    "/erasure-requests/{request_id}",
    response_model=ErasureRequestOut,
    summary="Progress of an erasure request, service by service",
    responses=_PROBLEMS,
)
async def get_erasure_request(
    request_id: str, session: SessionDep, _: Manager
) -> ErasureRequestOut:
    request = await ErasureRepository.from_session(session).get(request_id)
    if request is None:
        raise NotFound("No erasure request has this id.")
    return await privacy_service.describe(session, request, now=utcnow())


@router.get(
    "/erasure-requests",
    response_model=ErasureRequestPage,
    summary="Open erasure requests, nearest legal due date first",
    responses=_PROBLEMS,
)
async def list_open_erasure_requests(
    session: SessionDep, _: Manager, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> ErasureRequestPage:
    now = utcnow()
    rows = await ErasureRepository.from_session(session).open_requests(limit)
    return ErasureRequestPage(
        items=[await privacy_service.describe(session, row, now=now) for row in rows]
    )


def _crm_settings(runtime: Runtime[Any]) -> CrmSettings:
    settings = runtime.settings
    assert isinstance(settings, CrmSettings)
    return settings


@router.post(
    "/retention-runs",
    status_code=status.HTTP_201_CREATED,
    response_model=RetentionRunOut,
    summary="Run the retention purge now (dry run by default: counts only)",
    responses=_PROBLEMS,
)
async def trigger_retention_run(
    body: RetentionRunIn, runtime: RuntimeDep, _: Manager
) -> RetentionRunOut:
    settings = _crm_settings(runtime)
    run_id = await run_retention(
        runtime.session_factory,
        retention=timedelta(days=settings.client_retention_days),
        dry_run=body.dry_run,
        trigger="manual",
        batch_size=settings.retention_batch_size,
        hmac_key=settings.privacy_hmac_key.get_secret_value().encode(),
    )
    async with runtime.session_factory() as session:
        row = (
            await session.execute(select(retention_run).where(retention_run.c.id == run_id))
        ).one()
    return RetentionRunOut.model_validate(row)


@router.get(
    "/retention-runs",
    response_model=RetentionRunPage,
    summary="Evidence of the retention runs, latest first",
    responses=_PROBLEMS,
)
async def list_retention_runs(
    session: SessionDep, _: Manager, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> RetentionRunPage:
    rows = (
        await session.execute(
            select(retention_run).order_by(retention_run.c.started_at.desc()).limit(limit)
        )
    ).all()
    return RetentionRunPage(items=[RetentionRunOut.model_validate(row) for row in rows])


Staff = Annotated[Principal, Depends(require_roles("operator", "manager"))]


@router.post(
    "/objections",
    status_code=status.HTTP_201_CREATED,
    response_model=ObjectionOut,
    summary="Put a phone and/or e-mail on the do-not-contact list (stored as keyed hashes)",
    responses=_PROBLEMS,
)
async def create_objection(
    body: ObjectionIn, session: SessionDep, runtime: RuntimeDep, principal: Staff
) -> ObjectionOut:
    return await objections.record_objection(
        session,
        body=body,
        recorded_by=principal.token_id,
        hmac_key=runtime.settings.privacy_hmac_key.get_secret_value().encode(),
    )


@router.get(
    "/objections",
    response_model=ObjectionOut,
    summary="Is this phone or e-mail on the do-not-contact list?",
    responses=_PROBLEMS,
)
async def check_objection(
    session: SessionDep,
    runtime: RuntimeDep,
    _: Staff,
    phone: Annotated[str | None, Query(max_length=40)] = None,
    email: Annotated[str | None, Query(max_length=254)] = None,
) -> ObjectionOut:
    if not (phone or email):
        raise InvalidRequest(
            "Give a phone or an e-mail.",
            errors=[
                {
                    "field": "phone",
                    "location": "query",
                    "type": "missing",
                    "message": "phone or email required",
                }
            ],
        )
    return await objections.lookup(
        session,
        phone=phone,
        email=email,
        hmac_key=runtime.settings.privacy_hmac_key.get_secret_value().encode(),
    )
