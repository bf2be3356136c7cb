"""Bodies of the operators' messages and of the conversation API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from qualify.attempts.schemas import AttemptOut
from qualify.leads.state import LeadStatus
from qualify.messages.state import MessageStatus
from shared.events.payloads import AttemptOutcome, BounceKind, MessageChannel, MessageKind


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OperatorMessageIn(Strict):
    channel: MessageChannel
    template: Literal["operator_reply", "follow_up"] = Field(
        default="operator_reply",
        description="operator_reply wraps your text (greeting, signature); follow_up is the "
        '"we tried to reach you" message.',
    )
    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=4000,
        description="Your text ({{text}}); required by operator_reply.",
    )
    subject: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="E-mail only: overrides the template's subject (default for an answer to "
        'the prospect\'s e-mail: "Re: <their subject>").',
    )
    in_reply_to: str | None = Field(
        default=None,
        max_length=36,
        description="The id of the prospect's reply this answers (conversation): the e-mail "
        "threads in their mail client.",
    )
    outcome: AttemptOutcome = Field(
        default="no_answer",
        description="The contact attempt this message is recorded as (reached: you answer "
        "the prospect's own message).",
    )


class OutgoingOut(BaseModel):
    direction: Literal["out"] = "out"
    id: str
    channel: MessageChannel
    kind: MessageKind
    status: MessageStatus
    created_at: datetime
    to: str
    subject: str | None
    text: str
    operator_id: str | None
    attempt_id: str | None
    in_reply_to: str | None
    attempts: int
    sent_at: datetime | None
    delivered_at: datetime | None
    finished_at: datetime | None
    reason: str | None = Field(description="Why it ended so (a code: expired, opted_out…).")
    waiting_reason: str | None = Field(
        description="Why a queued message cannot leave yet (smtp_not_configured…)."
    )
    last_error: str | None = Field(description="The last sending failure (codes, no values).")
    bounce: BounceKind | None
    bounce_status: str | None


class IncomingOut(BaseModel):
    direction: Literal["in"] = "in"
    id: str
    channel: MessageChannel
    received_at: datetime
    sender: str
    subject: str | None
    text: str
    in_reply_to: str | None = Field(description="Our message it answers, when known.")
    stop_request: bool
    read_at: datetime | None
    read_by: str | None


ConversationItem = Annotated[OutgoingOut | IncomingOut, Field(discriminator="direction")]


class ConversationOut(BaseModel):
    lead_id: str
    unread_replies: int
    items: list[ConversationItem] = Field(description="Messages out and in, oldest first.")


class OperatorMessageSent(BaseModel):
    message: OutgoingOut
    attempt: AttemptOut
    lead_status: LeadStatus
    auto_disqualified: bool


class MarkedRead(BaseModel):
    lead_id: str
    marked_read: int
    unread_replies: int
