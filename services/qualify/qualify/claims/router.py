"""HTTP API of claims."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from starlette.responses import Response

from qualify.claims import service
from qualify.claims.schemas import ClaimOut
from qualify.deps import Operator, PolicyDep, RuntimeDep, is_manager
from qualify.policy import Policy
from qualify.problems import CallbackScheduled, LeadClaimed, LeadClosed, LeadNotFound
from shared.api import AUTH_PROBLEMS, NowDep, SessionDep, problem_responses, runtime_of
from shared.auth import Principal
from shared.errors import InvalidRequest
from shared.runtime import Runtime

router = APIRouter(prefix="/v1/leads/{lead_id}/claim", tags=["claims"], responses=AUTH_PROBLEMS)

CLAIM_PROBLEMS = problem_responses(
    LeadNotFound,
    LeadClosed,
    LeadClaimed,
    CallbackScheduled,
    InvalidRequest,
    s409="The lead is closed, another operator holds it, another operator's call-back is "
    "scheduled on it (before its time), or (renewal, release) it is not claimed",
)


@router.post(
    "",
    response_model=ClaimOut,
    summary="Claim the lead (a lease); 409 when another operator holds it or it is closed",
    responses=CLAIM_PROBLEMS,
)
async def claim(
    lead_id: str,
    principal: Operator,  # first: a refused caller takes no connection
    runtime: RuntimeDep,
) -> ClaimOut:
    # One dependency for the session, policy and clock (each dependency is a step of FastAPI's
    # solve on every claim, a session's generator dependency an exit stack too). The operators'
    # claims are answered by ``claim_directly``; this route documents them.
    return await _claim(runtime, principal, lead_id)


async def claim_directly(request: Request, principal: Principal) -> Response:
    """``POST /v1/leads/{lead_id}/claim`` answered by the request middleware (``shared.direct``,
    registered by ``qualify.app``): what ``claim`` does, without FastAPI's per-request
    machinery. The caller has passed ``OPERATE`` already."""
    out = await _claim(runtime_of(request), principal, request.path_params["lead_id"])
    # ``ClaimOut`` serialised once by pydantic-core (FastAPI would validate it again).
    return Response(out.model_dump_json(), media_type="application/json")


async def _claim(runtime: Runtime[Any], principal: Principal, lead_id: str) -> ClaimOut:
    # The service runs its own unit of work: one statement in autocommit on PostgreSQL.
    held = await service.claim(
        runtime.session_factory, runtime.component(Policy), principal, lead_id, runtime.clock()
    )
    return ClaimOut.held(held)


@router.post(
    "/renewal",
    response_model=ClaimOut,
    summary="Extend the caller's unexpired claim by one lease",
    responses=CLAIM_PROBLEMS,
)
async def renew(
    lead_id: str, session: SessionDep, principal: Operator, policy: PolicyDep, now: NowDep
) -> ClaimOut:
    return ClaimOut.of(await service.renew(session, policy, principal, lead_id, now))


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Give the lead back to the queue (the holder, or a manager)",
    responses=CLAIM_PROBLEMS,
)
async def release(lead_id: str, session: SessionDep, principal: Operator, now: NowDep) -> None:
    await service.release(session, principal, lead_id, now, manager=is_manager(principal))
