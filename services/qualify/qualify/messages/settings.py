"""Settings of qualify's messages to the prospect (env ``QUALIFY_MESSAGE_…``), mixed into
``QualifySettings`` with the shared ``SmtpSettings``, ``LeadTokenSettings`` and
``OvhSmsSettings`` (``QUALIFY_SMTP_HOST``, ``QUALIFY_LEAD_TOKEN_KEY``, ``QUALIFY_OVH_…``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from shared.messaging.sms_text import DEFAULT_OPT_OUT, measure_sms


class MessagingSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    # Who writes, and where answers come back.
    message_dealer_name: str = Field(
        default="Votre concession", max_length=100, description="The sender named in messages."
    )
    message_from_address: str = Field(
        default="concession@vo-leads.test", description="From address of the e-mails."
    )
    message_reply_mailbox: str = Field(
        default="concession@vo-leads.test",
        description="The mailbox ingest reads (IMAP): Reply-To is its plus-address with the "
        "lead's token, and the Return-Path where bounces come back.",
    )
    message_public_base_url: str | None = Field(
        default=None,
        description="qualify's public URL (https://…): the one-click unsubscribe link "
        "(List-Unsubscribe) and the SMS delivery-receipt callback are under it. Unset: "
        "List-Unsubscribe offers the mailto only, receipts are polled.",
    )
    message_callback_phone: str | None = Field(
        default=None, max_length=30, description="The dealer's phone, for {{callback_phone}}."
    )
    message_callback_url: str | None = Field(
        default=None, max_length=300, description="A booking link, for {{callback_link}}."
    )

    # SMS.
    message_sms_opt_out: str = Field(
        default=DEFAULT_OPT_OUT, max_length=40, description='The opt-out line, "STOP au …".'
    )
    message_sms_max_segments: int = Field(default=2, ge=1, le=2)
    message_sms_receipt_secret: SecretStr | None = Field(
        default=None,
        description="Path secret of the delivery-receipt callback (OVH does not sign it).",
    )
    message_sms_receipt_poll_s: float = Field(
        default=300.0, ge=0, description="Ask the provider for receipts this often (0: never)."
    )

    # The automatic first answer.
    message_first_answer_email: bool = True
    message_first_answer_sms: bool = True
    message_first_answer_valid_minutes: int = Field(
        default=120,
        ge=1,
        description="A first answer not handed over within this time is cancelled (it says "
        "when the dealer will call: stale, it would mislead).",
    )
    message_operator_valid_minutes: int = Field(default=24 * 60, ge=1)

    # The sender.
    message_send_batch_size: int = Field(default=20, ge=1, le=500)
    message_send_concurrency: int = Field(default=8, ge=1, le=100)
    message_send_lease_s: float = Field(
        default=120.0, ge=10, description="A claim's lease; a send is cut at half of it."
    )
    message_poll_interval_s: float = Field(
        default=5.0,
        gt=0,
        description="Fallback poll (a queued message wakes the sender, from any process).",
    )
    message_retry_base_s: float = Field(default=15.0, gt=0)
    message_retry_max_s: float = Field(default=900.0, gt=0)
    message_max_attempts: int = Field(default=10, ge=1)

    @field_validator("message_from_address", "message_reply_mailbox")
    @classmethod
    def plain_address(cls, value: str) -> str:
        local, at, domain = value.rpartition("@")
        if not at or not local or not domain or "+" in local or " " in value:
            raise ValueError("expected user@domain (without a +detail)")
        return value

    @field_validator("message_sms_opt_out")
    @classmethod
    def opt_out_fits(cls, value: str) -> str:
        if not value.strip() or measure_sms(value).segments > 1:
            raise ValueError("the opt-out line must be short (one SMS at most)")
        return value

    @field_validator("message_public_base_url")
    @classmethod
    def http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("expected an http(s) URL")
        return value.rstrip("/") if value else value
