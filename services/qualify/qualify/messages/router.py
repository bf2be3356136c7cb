"""HTTP API of the conversation with the prospect: an operator's message (recorded as a contact
attempt, queued for sending), the conversation, and marking the prospect's replies read."""

from __future__ import annotations

from fastapi import APIRouter, status

from qualify.attempts.router import attempt_out
from qualify.deps import ComposerDep, Operator
from qualify.messages import conversation as conversations, operator
from qualify.messages.conversation import outgoing_out
from qualify.messages.schemas import (
    ConversationOut,
    MarkedRead,
    OperatorMessageIn,
    OperatorMessageSent,
)
from qualify.problems import ContactNotAllowed, LeadNotFound
from shared.api import AUTH_PROBLEMS, NowDep, OutboxDep, SessionDep, problem_responses
from shared.errors import Forbidden, InvalidRequest

router = APIRouter(prefix="/v1/leads/{lead_id}", tags=["messages"], responses=AUTH_PROBLEMS)


@router.post(
    "/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=OperatorMessageSent,
    summary="Send the prospect an e-mail or SMS (template or your text); recorded as a contact "
    "attempt and queued for sending",
    responses=problem_responses(
        LeadNotFound,
        ContactNotAllowed,
        InvalidRequest,
        s409="Illegal in the lead's state, no claim, no contact detail for the channel, or the "
        "person opted out of it / the address bounced (contact-not-allowed, reason)",
        s422="Invalid body, unknown template variable, missing text, SMS too long",
    ),
)
async def post_message(
    lead_id: str,
    body: OperatorMessageIn,
    session: SessionDep,
    principal: Operator,
    composer: ComposerDep,
    outbox: OutboxDep,
    now: NowDep,
) -> OperatorMessageSent:
    sent = await operator.send(
        session, principal, lead_id, body, composer=composer, outbox=outbox, now=now
    )
    return OperatorMessageSent(
        message=outgoing_out(sent.message),
        attempt=attempt_out(sent.recorded.attempt),
        lead_status=sent.recorded.lead.status,
        auto_disqualified=sent.recorded.auto_disqualified,
    )


@router.get(
    "/conversation",
    response_model=ConversationOut,
    summary="The messages to and from the prospect, oldest first, with their statuses",
    responses=problem_responses(
        Forbidden,
        LeadNotFound,
        s403="Missing role, or another operator's lead (a manager may read it)",
    ),
)
async def get_conversation(
    lead_id: str, session: SessionDep, principal: Operator, now: NowDep
) -> ConversationOut:
    return await conversations.conversation(session, lead_id, principal, now)


@router.post(
    "/conversation/read",
    response_model=MarkedRead,
    summary="Mark the prospect's replies read (clears the lead's unread mark)",
    responses=problem_responses(
        Forbidden,
        LeadNotFound,
        s403="Missing role, or another operator's lead (a manager may read it)",
    ),
)
async def read_conversation(
    lead_id: str, session: SessionDep, principal: Operator, now: NowDep
) -> MarkedRead:
    marked = await conversations.mark_read(session, lead_id, principal, now)
    return MarkedRead(lead_id=lead_id, marked_read=marked, unread_replies=0)
