"""The life of a message to the prospect, and the Literals its columns and schemas share.

    queued ──claim──▶ sending ──handed over, answer recorded──▶ sent ──▶ delivered | bounced
      ▲                  │                                         └──▶ failed (SMS not delivered)
      └──transient error─┤──permanent error──▶ failed
                         └──crash after hand-over (e-mail)──▶ unconfirmed (never resent)
    queued ──expired, opted out, unreachable──▶ cancelled

``queued`` may carry a ``waiting_reason`` (``smtp_not_configured``…) while it cannot leave.
"""

from __future__ import annotations

from typing import Literal

from shared.events.payloads import MessageKind

MessageStatus = Literal[
    "queued", "sending", "sent", "delivered", "bounced", "failed", "unconfirmed", "cancelled"
]
QUEUED: MessageStatus = "queued"
SENDING: MessageStatus = "sending"
SENT: MessageStatus = "sent"
DELIVERED: MessageStatus = "delivered"
BOUNCED: MessageStatus = "bounced"
FAILED: MessageStatus = "failed"
UNCONFIRMED: MessageStatus = "unconfirmed"
CANCELLED: MessageStatus = "cancelled"

TemplateKind = MessageKind  # first_answer, follow_up, operator_reply
BlockReason = Literal["stop", "unsubscribe", "hard_bounce"]

# Why a queued message cannot leave yet (``waiting_reason``).
SMTP_NOT_CONFIGURED = "smtp_not_configured"
SMS_NOT_CONFIGURED = "sms_not_configured"
