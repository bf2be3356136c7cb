"""HTTP API of call-backs: set or replace one on a lead, cancel it, list an operator's."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from qualify.callbacks import service
from qualify.callbacks.repository import CallbackRepository
from qualify.callbacks.schemas import CallbackIn, CallbackOut, ScheduledCallback
from qualify.deps import Manager, Operator, PolicyDep, is_manager
from qualify.leads import state
from qualify.models import QueuedLead
from qualify.problems import (
    CallbackNotFound,
    ContactNotAllowed,
    LeadClaimed,
    LeadClosed,
    LeadNotFound,
    MissingContactDetail,
)
from shared.api import AUTH_PROBLEMS, NowDep, SessionDep, problem_responses
from shared.errors import InvalidRequest

router = APIRouter(tags=["call-backs"], responses=AUTH_PROBLEMS)

_CHANGE = "/v1/leads/{lead_id}/callback"


@router.put(
    _CHANGE,
    response_model=CallbackOut,
    summary="Schedule (or replace) the call-back the prospect asked for; releases the claim",
    responses=problem_responses(
        LeadNotFound,
        LeadClosed,
        LeadClaimed,
        ContactNotAllowed,
        MissingContactDetail,
        InvalidRequest,
        s409="Closed lead, no claim (or another's), no phone number, or a time the calling "
        "rules or the call centre's hours do not allow (reason, next_allowed_at)",
        s422="Invalid body, a time in the past or too far ahead",
    ),
)
async def put_callback(
    lead_id: str,
    body: CallbackIn,
    session: SessionDep,
    principal: Operator,
    policy: PolicyDep,
    now: NowDep,
) -> CallbackOut:
    lead = await service.set_callback(
        session, principal, lead_id, body, policy=policy, now=now, manager=is_manager(principal)
    )
    return CallbackOut.of(lead)


@router.delete(
    _CHANGE,
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Cancel the lead's call-back (its owner, the claim's holder or a manager): the "
    "lead is back in the queue",
    responses=problem_responses(
        LeadNotFound,
        CallbackNotFound,
        LeadClosed,
        LeadClaimed,
        InvalidRequest,
        s404="Unknown lead, or no call-back scheduled",
        s409="Closed lead, or not the caller's to change",
    ),
)
async def delete_callback(
    lead_id: str, session: SessionDep, principal: Operator, policy: PolicyDep, now: NowDep
) -> None:
    await service.cancel_callback(
        session, principal, lead_id, policy=policy, now=now, manager=is_manager(principal)
    )


Limit = Annotated[int, Query(ge=1, le=500)]


@router.get(
    "/v1/operators/me/callbacks",
    response_model=list[ScheduledCallback],
    summary="The caller's scheduled call-backs, earliest first",
    responses=problem_responses(InvalidRequest),
)
async def my_callbacks(
    session: SessionDep, principal: Operator, now: NowDep, limit: Limit = 100
) -> list[ScheduledCallback]:
    rows = await CallbackRepository.from_session(session).scheduled_by(principal.token_id, limit)
    return [_line(row, principal.token_id, now) for row in rows]


@router.get(
    "/v1/operators/{operator_id}/callbacks",
    response_model=list[ScheduledCallback],
    summary="One operator's scheduled call-backs (managers)",
    responses=problem_responses(InvalidRequest),
)
async def operator_callbacks(
    operator_id: Annotated[str, Path(min_length=1, max_length=36)],
    session: SessionDep,
    _: Manager,
    now: NowDep,
    limit: Limit = 100,
) -> list[ScheduledCallback]:
    rows = await CallbackRepository.from_session(session).scheduled_by(operator_id, limit)
    return [_line(row, operator_id, now) for row in rows]


def _line(lead: QueuedLead, operator_id: str, now: datetime) -> ScheduledCallback:
    return ScheduledCallback(
        callback=CallbackOut.of(lead),
        status=lead.status,
        source=lead.source,
        overdue=lead.is_overdue(now),
        claimed_by_me=state.is_held_by(lead, operator_id, now),
        full_name=lead.full_name,
        phone=lead.phone,
    )
