"""HTTP API of qualification and disqualification."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from starlette.responses import Response

from qualify.deps import Operator, PolicyDep, RuntimeDep, is_manager
from qualify.policy import Policy
from qualify.problems import (
    ContactSuppressed,
    LeadClosed,
    LeadNotFound,
    LeadOpen,
    LeadQualified,
)
from qualify.qualification import service
from qualify.qualification.schemas import (
    DisqualificationIn,
    DisqualificationOut,
    QualificationIn,
    QualificationOut,
    ReopeningIn,
    ReopeningOut,
)
from shared.api import (
    AUTH_PROBLEMS,
    NowDep,
    OutboxDep,
    SessionDep,
    problem_responses,
    runtime_of,
)
from shared.auth import Principal
from shared.direct import json_model
from shared.errors import Forbidden, InvalidRequest
from shared.runtime import Runtime

router = APIRouter(prefix="/v1/leads/{lead_id}", tags=["qualification"], responses=AUTH_PROBLEMS)


@router.post(
    "/qualification",
    status_code=status.HTTP_201_CREATED,
    response_model=QualificationOut,
    summary="Qualify the claimed lead (publishes lead.qualified.v1)",
    responses=problem_responses(
        LeadNotFound,
        ContactSuppressed,
        InvalidRequest,
        s409="Illegal in the lead's state, no claim, or a marketing consent for a person on "
        "the do-not-contact list",
    ),
)
async def post_qualification(
    lead_id: str, body: QualificationIn, principal: Operator, runtime: RuntimeDep
) -> QualificationOut:
    # One dependency for the rest (each costs a step of FastAPI's solve per request). JSON
    # bodies are answered by ``post_qualification_directly``; this route documents them.
    return await _qualify(runtime, principal, lead_id, body)


async def post_qualification_directly(request: Request, principal: Principal) -> Response:
    """``POST /v1/leads/{lead_id}/qualification`` with an ``application/json`` body, answered
    by the request middleware (``shared.direct``, registered by ``qualify.app``): what
    ``post_qualification`` does, without FastAPI's per-request machinery. The body was decoded
    before the caller passed ``OPERATE`` (``json_first``), as FastAPI does; ``json_model``
    validates it as FastAPI would, with the same 422."""
    body = await json_model(request, QualificationIn)
    out = await _qualify(runtime_of(request), principal, request.path_params["lead_id"], body)
    # Serialised once by pydantic-core (FastAPI would validate the answer again).
    return Response(
        out.model_dump_json(), status_code=status.HTTP_201_CREATED, media_type="application/json"
    )


async def _qualify(
    runtime: Runtime[Any], principal: Principal, lead_id: str, body: QualificationIn
) -> QualificationOut:
    # The service runs its own unit of work: one statement in autocommit on PostgreSQL.
    qualification = await service.qualify(
        runtime.session_factory,
        principal,
        lead_id,
        body,
        policy=runtime.component(Policy),
        outbox=runtime.outbox,
        now=runtime.clock(),
    )
    return QualificationOut(
        lead_id=qualification.lead_id,
        operator_id=qualification.operator_id,
        qualified_at=qualification.qualified_at,
        qualification=QualificationIn.model_validate(qualification.data),
    )


@router.post(
    "/disqualification",
    status_code=status.HTTP_201_CREATED,
    response_model=DisqualificationOut,
    summary="Disqualify the claimed lead (publishes lead.disqualified.v1)",
    responses=problem_responses(
        LeadNotFound, LeadClosed, InvalidRequest, s409="Illegal in the lead's state, or no claim"
    ),
)
async def post_disqualification(
    lead_id: str,
    body: DisqualificationIn,
    session: SessionDep,
    principal: Operator,
    outbox: OutboxDep,
    now: NowDep,
) -> DisqualificationOut:
    lead = await service.disqualify(session, principal, lead_id, body, outbox=outbox, now=now)
    assert lead.closed_at is not None
    assert lead.disqualification_reason is not None
    return DisqualificationOut(
        lead_id=lead.lead_id,
        reason=lead.disqualification_reason,
        duplicate_of=lead.duplicate_of,
        disqualified_at=lead.closed_at,
    )


@router.post(
    "/reopening",
    status_code=status.HTTP_201_CREATED,
    response_model=ReopeningOut,
    summary="Reopen a disqualified lead (its operator within a day, a manager any time); "
    "publishes lead.reopened.v1",
    responses=problem_responses(
        Forbidden,
        LeadNotFound,
        LeadQualified,
        LeadOpen,
        InvalidRequest,
        s403="Missing role, not the operator who disqualified it, or their delay is over (a "
        "manager may)",
        s409="The lead is qualified (it belongs to dispatch) or open",
    ),
)
async def post_reopening(
    lead_id: str,
    body: ReopeningIn,
    session: SessionDep,
    principal: Operator,
    policy: PolicyDep,
    outbox: OutboxDep,
    now: NowDep,
) -> ReopeningOut:
    lead, previous = await service.reopen(
        session,
        principal,
        lead_id,
        body,
        policy=policy,
        outbox=outbox,
        now=now,
        manager=is_manager(principal),
    )
    assert lead.status in ("waiting", "contacting")
    return ReopeningOut(
        lead_id=lead.lead_id,
        status="contacting" if lead.status == "contacting" else "waiting",
        reason=body.reason,
        previous_reason=previous,
        reopened_at=now,
        due_at=lead.due_at,
    )
