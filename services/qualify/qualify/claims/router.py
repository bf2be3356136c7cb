"""HTTP API of claims."""

from __future__ import annotations

from fastapi import APIRouter, status

from qualify.claims import service
from qualify.claims.schemas import ClaimOut
from qualify.deps import LEAD_PROBLEMS, PolicyDep, Worker, is_manager
from shared.api import SessionDep

router = APIRouter(prefix="/v1/leads/{lead_id}/claim", tags=["claims"])


@router.post(
    "",
    response_model=ClaimOut,
    summary="Claim the lead (a lease); 409 when another operator holds it or it is closed",
    responses=LEAD_PROBLEMS,
)
async def claim(
    lead_id: str, session: SessionDep, principal: Worker, policy: PolicyDep
) -> ClaimOut:
    return ClaimOut.of(await service.claim(session, policy, principal, lead_id))


@router.post(
    "/renewal",
    response_model=ClaimOut,
    summary="Extend the caller's unexpired claim by one lease",
    responses=LEAD_PROBLEMS,
)
async def renew(
    lead_id: str, session: SessionDep, principal: Worker, policy: PolicyDep
) -> ClaimOut:
    return ClaimOut.of(await service.renew(session, policy, principal, lead_id))


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Give the lead back to the queue (the holder, or a manager)",
    responses=LEAD_PROBLEMS,
)
async def release(lead_id: str, session: SessionDep, principal: Worker, policy: PolicyDep) -> None:
    await service.release(session, policy, principal, lead_id, manager=is_manager(principal))
