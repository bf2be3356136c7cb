"""HTTP API of operators' figures: handled today, average time to first attempt."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from qualify.deps import Manager, Operator, PolicyDep
from qualify.operators.schemas import OperatorStats
from qualify.operators.service import stats_of
from shared.api import AUTH_PROBLEMS, NowDep, SessionDep, problem_responses
from shared.errors import InvalidRequest

router = APIRouter(prefix="/v1/operators", tags=["operators"], responses=AUTH_PROBLEMS)


@router.get(
    "/me/stats",
    response_model=OperatorStats,
    summary="The caller's figures of today",
    responses=problem_responses(InvalidRequest),
)
async def my_stats(
    session: SessionDep, principal: Operator, policy: PolicyDep, now: NowDep
) -> OperatorStats:
    return await stats_of(session, policy, principal.token_id, now)


@router.get(
    "/{operator_id}/stats",
    response_model=OperatorStats,
    summary="One operator's figures of today (managers)",
    responses=problem_responses(InvalidRequest),
)
async def operator_stats(
    operator_id: Annotated[str, Path(min_length=1, max_length=36)],
    session: SessionDep,
    _: Manager,
    policy: PolicyDep,
    now: NowDep,
) -> OperatorStats:
    return await stats_of(session, policy, operator_id, now)
