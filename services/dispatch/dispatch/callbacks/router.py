"""Sellers' call-backs on their assignments: accept, decline, contacted, appointment,
reschedule, no-show, sold, lost, hand-back.

The caller is the seller's token (role ``seller``); a seller acting on another seller's
assignment gets 403, an illegal transition 409 (problem+json with the current status).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Body, Depends

from dispatch.assignments import callbacks
from dispatch.assignments.schemas import (
    AppointmentIn,
    AssignmentOut,
    ContactedIn,
    DeclineIn,
    HandBackIn,
    LostIn,
    SoldIn,
)
from dispatch.assignments.step import Step
from dispatch.deps import Seller, StepDep
from dispatch.models import Assignment
from dispatch.problems import (
    IllegalTransition,
    NotYourAssignment,
    UnknownAssignment,
    UnknownSite,
)
from shared.api import AUTH_PROBLEMS, problem_responses
from shared.errors import InvalidRequest

router = APIRouter(
    prefix="/v1/assignments",
    tags=["call-backs"],
    responses={
        **AUTH_PROBLEMS,
        **problem_responses(
            NotYourAssignment,
            UnknownAssignment,
            s403="Not a seller, or another seller's assignment",
        ),
    },
)

MOVE_PROBLEMS = problem_responses(IllegalTransition)
MOVE_WITH_BODY_PROBLEMS = problem_responses(IllegalTransition, InvalidRequest)
APPOINTMENT_PROBLEMS = problem_responses(
    UnknownAssignment,
    UnknownSite,
    IllegalTransition,
    InvalidRequest,
    s404="Unknown assignment or site",
)


@dataclass(frozen=True)
class Callback:
    """The request's step and the caller's own assignment (403 for another seller's)."""

    step: Step
    assignment: Assignment


async def _own_assignment(assignment_id: str, step: StepDep, caller: Seller) -> Callback:
    return Callback(step, await callbacks.own_assignment(step, assignment_id, caller))


OwnAssignment = Annotated[Callback, Depends(_own_assignment)]


@router.get("/{assignment_id}", response_model=AssignmentOut)
async def get_assignment(own: OwnAssignment) -> AssignmentOut:
    return AssignmentOut.model_validate(own.assignment)


@router.post("/{assignment_id}/accept", response_model=AssignmentOut, responses=MOVE_PROBLEMS)
async def accept(own: OwnAssignment) -> AssignmentOut:
    return AssignmentOut.model_validate(await callbacks.accept(own.step, own.assignment))


@router.post(
    "/{assignment_id}/decline", response_model=AssignmentOut, responses=MOVE_WITH_BODY_PROBLEMS
)
async def decline(body: DeclineIn, own: OwnAssignment) -> AssignmentOut:
    return AssignmentOut.model_validate(
        await callbacks.decline(own.step, own.assignment, body.reason)
    )


@router.post(
    "/{assignment_id}/contacted", response_model=AssignmentOut, responses=MOVE_WITH_BODY_PROBLEMS
)
async def contacted(body: ContactedIn, own: OwnAssignment) -> AssignmentOut:
    return AssignmentOut.model_validate(
        await callbacks.contacted(own.step, own.assignment, body.channel)
    )


@router.post(
    "/{assignment_id}/appointment", response_model=AssignmentOut, responses=APPOINTMENT_PROBLEMS
)
async def appointment(body: AppointmentIn, own: OwnAssignment) -> AssignmentOut:
    return AssignmentOut.model_validate(
        await callbacks.appointment(own.step, own.assignment, body.appointment_at, body.site_id)
    )


@router.post(
    "/{assignment_id}/reschedule", response_model=AssignmentOut, responses=APPOINTMENT_PROBLEMS
)
async def reschedule(body: AppointmentIn, own: OwnAssignment) -> AssignmentOut:
    """Move the appointment to a new time (and site); the previous one stays in the history."""
    return AssignmentOut.model_validate(
        await callbacks.reschedule(own.step, own.assignment, body.appointment_at, body.site_id)
    )


@router.post("/{assignment_id}/no-show", response_model=AssignmentOut, responses=MOVE_PROBLEMS)
async def no_show(own: OwnAssignment) -> AssignmentOut:
    """The prospect did not come (after the appointment's time): back to follow-ups."""
    return AssignmentOut.model_validate(await callbacks.no_show(own.step, own.assignment))


@router.post(
    "/{assignment_id}/sold", response_model=AssignmentOut, responses=MOVE_WITH_BODY_PROBLEMS
)
async def sold(own: OwnAssignment, body: Annotated[SoldIn | None, Body()] = None) -> AssignmentOut:
    """The prospect bought; the body (optional) gives the sale price."""
    price = body.price_eur if body is not None else None
    return AssignmentOut.model_validate(await callbacks.sold(own.step, own.assignment, price))


@router.post(
    "/{assignment_id}/lost", response_model=AssignmentOut, responses=MOVE_WITH_BODY_PROBLEMS
)
async def lost(body: LostIn, own: OwnAssignment) -> AssignmentOut:
    return AssignmentOut.model_validate(await callbacks.lost(own.step, own.assignment, body.reason))


@router.post(
    "/{assignment_id}/hand-back", response_model=AssignmentOut, responses=MOVE_WITH_BODY_PROBLEMS
)
async def hand_back(body: HandBackIn, own: OwnAssignment) -> AssignmentOut:
    """Give the lead back (not a loss): it is routed again, never to this seller this round."""
    return AssignmentOut.model_validate(
        await callbacks.hand_back(own.step, own.assignment, body.reason)
    )
