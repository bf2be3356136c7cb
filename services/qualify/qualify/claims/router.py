"""HTTP API of claims."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from sqlalchemy.ext.asyncio import AsyncSession

from qualify.claims import service
from qualify.claims.schemas import ClaimOut
from qualify.deps import Operator, PolicyDep, is_manager
from qualify.problems import CallbackScheduled, LeadClaimed, LeadClosed, LeadNotFound
from shared.api import AUTH_PROBLEMS, NowDep, SessionDep, problem_responses, runtime_of
from shared.errors import InvalidRequest

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


async def autocommit_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session whose statements each commit on their own (autocommit). For a claim only: it
    writes with one conditional UPDATE, atomic by itself, and a refusal only reads. One round
    trip, where a unit of work's BEGIN and COMMIT made three on PostgreSQL."""
    async with runtime_of(request).engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        async with AsyncSession(bind=connection) as session:
            yield session


AutocommitSessionDep = Annotated[AsyncSession, Depends(autocommit_session, scope="function")]


@router.post(
    "",
    response_model=ClaimOut,
    summary="Claim the lead (a lease); 409 when another operator holds it or it is closed",
    responses=CLAIM_PROBLEMS,
)
async def claim(
    lead_id: str,
    principal: Operator,  # first: a refused caller takes no connection
    session: AutocommitSessionDep,
    policy: PolicyDep,
    now: NowDep,
) -> ClaimOut:
    return ClaimOut.held(await service.claim(session, policy, principal, lead_id, now))


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
