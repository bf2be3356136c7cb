"""HTTP API of GDPR erasure requests, retention runs (managers) and the do-not-contact list."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from crm.deps import Manager, PrivacyKeyDep, RuntimeDep, Staff
from crm.privacy import objections, service as privacy_service
from crm.privacy.repository import ErasureRepository, RetentionRepository
from crm.privacy.retention import run_retention
from crm.privacy.schemas import (
    ErasureRequestIn,
    ErasureRequestOut,
    ErasureRequestPage,
    ObjectionIn,
    ObjectionOut,
    RetentionRunIn,
    RetentionRunOut,
    RetentionRunPage,
)
from shared.api import AUTH_PROBLEMS, NowDep, OutboxDep, SessionDep, problem_responses
from shared.errors import InvalidRequest, NotFound

router = APIRouter(prefix="/v1/privacy", tags=["privacy"], responses=AUTH_PROBLEMS)

_PROBLEMS = problem_responses(
    NotFound, InvalidRequest, s404="Unknown client or request", s422="Invalid fields"
)


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
    outbox: OutboxDep,
    key: PrivacyKeyDep,
    now: NowDep,
    principal: Manager,
    response: Response,
) -> ErasureRequestOut:
    request, created = await privacy_service.request_erasure(
        session,
        outbox,
        client_id=body.client_id,
        reason=body.reason,
        requested_by=principal.token_id,
        hmac_key=key,
        now=now,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return await privacy_service.describe(session, request, now=now)


@router.get(
    "/erasure-requests/{request_id}",
    response_model=ErasureRequestOut,
    summary="Progress of an erasure request, service by service",
    responses=_PROBLEMS,
)
async def get_erasure_request(
    request_id: str, session: SessionDep, now: NowDep, _: Manager
) -> ErasureRequestOut:
    request = await ErasureRepository.from_session(session).get(request_id)
    if request is None:
        raise NotFound("No erasure request has this id.")
    return await privacy_service.describe(session, request, now=now)


@router.get(
    "/erasure-requests",
    response_model=ErasureRequestPage,
    summary="Open erasure requests, nearest legal due date first",
    responses=_PROBLEMS,
)
async def list_open_erasure_requests(
    session: SessionDep,
    now: NowDep,
    _: Manager,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ErasureRequestPage:
    rows = await ErasureRepository.from_session(session).open_requests(limit)
    return ErasureRequestPage(
        items=[await privacy_service.describe(session, row, now=now) for row in rows]
    )


@router.post(
    "/retention-runs",
    status_code=status.HTTP_201_CREATED,
    response_model=RetentionRunOut,
    summary="Run the retention purge now (dry run by default: counts only)",
    responses=_PROBLEMS,
)
async def trigger_retention_run(
    body: RetentionRunIn, runtime: RuntimeDep, key: PrivacyKeyDep, _: Manager
) -> RetentionRunOut:
    settings = runtime.settings
    run_id = await run_retention(
        runtime.session_factory,
        runtime.outbox,
        clock=runtime.clock,
        retention=timedelta(days=settings.client_retention_days),
        dry_run=body.dry_run,
        trigger="manual",
        batch_size=settings.retention_batch_size,
        hmac_key=key,
    )
    async with runtime.session_factory() as session:
        run = await RetentionRepository.from_session(session).get(run_id)
        assert run is not None
        return RetentionRunOut.model_validate(run)


@router.get(
    "/retention-runs",
    response_model=RetentionRunPage,
    summary="Evidence of the retention runs, latest first",
    responses=_PROBLEMS,
)
async def list_retention_runs(
    session: SessionDep, _: Manager, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> RetentionRunPage:
    runs = await RetentionRepository.from_session(session).latest(limit)
    return RetentionRunPage(items=[RetentionRunOut.model_validate(run) for run in runs])


@router.post(
    "/objections",
    status_code=status.HTTP_201_CREATED,
    response_model=ObjectionOut,
    summary="Put a phone and/or e-mail on the do-not-contact list (stored as keyed hashes)",
    responses=_PROBLEMS,
)
async def create_objection(
    body: ObjectionIn,
    session: SessionDep,
    outbox: OutboxDep,
    key: PrivacyKeyDep,
    now: NowDep,
    principal: Staff,
) -> ObjectionOut:
    return await objections.record_objection(
        session, outbox, body=body, recorded_by=principal.token_id, hmac_key=key, now=now
    )


@router.get(
    "/objections",
    response_model=ObjectionOut,
    summary="Is this phone or e-mail on the do-not-contact list?",
    responses=_PROBLEMS,
)
async def check_objection(
    session: SessionDep,
    key: PrivacyKeyDep,
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
    return await objections.lookup(session, phone=phone, email=email, hmac_key=key)
