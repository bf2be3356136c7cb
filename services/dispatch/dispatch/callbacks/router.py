"""Sellers' call-backs on their assignments: accept, decline, contacted, appointment, sold, lost.

The caller is the seller's token (role ``seller``); a seller acting on another seller's
assignment gets 403, an illegal transition 409 (problem+json with the current status).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends

from dispatch.assignments import callbacks
from dispatch.assignments.schemas import (
    AppointmentIn,
    AssignmentOut,
    ContactedIn,
    DeclineIn,
    LostIn,
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


@router.post("/{assignment_id}/sold", response_model=AssignmentOut, responses=MOVE_PROBLEMS)
async def sold(own: OwnAssignment) -> AssignmentOut:
    return AssignmentOut.model_validate(await callbacks.sold(own.step, own.assignment))


@router.post(
    "/{assignment_id}/lost", response_model=AssignmentOut, responses=MOVE_WITH_BODY_PROBLEMS
)
async def lost(body: LostIn, own: OwnAssignment) -> AssignmentOut:
    return AssignmentOut.model_validate(await callbacks.lost(own.step, own.assignment, body.reason))
