"""The sellers' own views (role ``seller``, their own token): their open offers and assignments
with deadlines, and the feed of every message written for their tool since a cursor. A seller
only ever reads their own."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from dispatch.assignments.offers import callback_urls
from dispatch.assignments.repository import AssignmentRepository
from dispatch.assignments.schemas import AssignmentOut
from dispatch.assignments.state import ACCEPTED, OFFERED
from dispatch.deps import NowDep, OwnSeller, SettingsDep, StepDep
from dispatch.models import Assignment
from dispatch.problems import NotASeller
from dispatch.sellers.feed import read_feed
from dispatch.sellers.schemas import Deadlines, Feed, OwnAssignment
from dispatch.timers.kinds import FOLLOWUP
from dispatch.timers.repository import TimerRepository
from dispatch.webhooks.repository import WebhookRepository
from shared.api import AUTH_PROBLEMS, SessionDep, problem_responses
from shared.errors import InvalidRequest

router = APIRouter(
    prefix="/v1/sellers/me",
    tags=["sellers"],
    responses={
        **AUTH_PROBLEMS,
        **problem_responses(NotASeller, s403="Not a seller's token"),
    },
)


@router.get(
    "/assignments",
    response_model=list[OwnAssignment],
    responses=problem_responses(InvalidRequest),
)
async def my_assignments(
    seller: OwnSeller,
    step: StepDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[OwnAssignment]:
    """The caller's open offers and assignments, oldest offer first, each with what is due by
    when and the lead as their tool received it."""
    repo = AssignmentRepository(step.session)
    rows = await repo.open_of_seller(seller.id, limit=limit)
    leads = await repo.leads([row.lead_id for row in rows])
    followups = await TimerRepository(step.session).next_due([row.id for row in rows], FOLLOWUP)
    return [
        OwnAssignment(
            **AssignmentOut.model_validate(row).model_dump(),
            deadlines=_deadlines(row, followups.get(row.id)),
            lead=leads[row.lead_id].qualification,
            callbacks=callback_urls(step, row.id),
        )
        for row in rows
    ]


def _deadlines(row: Assignment, next_followup: datetime | None) -> Deadlines:
    return Deadlines(
        accept_by=row.accept_due_at if row.status == OFFERED else None,
        first_contact_by=row.first_contact_due_at if row.status == ACCEPTED else None,
        next_followup_at=next_followup,
        appointment_at=row.appointment_at,
    )


@router.get("/events", response_model=Feed, responses=problem_responses(InvalidRequest))
async def my_events(
    seller: OwnSeller,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    after: Annotated[
        str | None,
        Query(max_length=200, description="The `next_cursor` (or an event's `cursor`) last read."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Feed:
    """Every message written for the caller's tool after the cursor, in the order written, with
    the data its webhook carries (delivered, pending, failed, or held because the endpoint was
    disabled or missing). Without a cursor: from the first message still kept."""
    return await read_feed(
        WebhookRepository(session),
        seller.id,
        after=after,
        limit=limit,
        now=now,
        settle=timedelta(seconds=settings.seller_feed_settle_s),
    )
