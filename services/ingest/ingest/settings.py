"""Ingest settings (env prefix ``INGEST_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from ingest.sources.email.mime import MimeLimits
from shared.messaging.settings import LeadTokenSettings, OvhSmsSettings
from shared.settings import ServiceSettings

MIB = 1024 * 1024


class IngestSettings(ServiceSettings, LeadTokenSettings, OvhSmsSettings):
    """``INGEST_LEAD_TOKEN_KEY`` must equal qualify's (the replies' plus-addresses and
    Message-IDs are signed with it); ``INGEST_OVH_*`` is the SMS account whose inbound messages
    the worker polls (docs/ingest.md, Replies)."""

    model_config = SettingsConfigDict(
        env_prefix="INGEST_", extra="ignore", frozen=True, env_ignore_empty=True
    )
    service_name: ClassVar[str] = "ingest"

    http_port: int = 8001
    # The shared middleware's limit is the largest body any ingest route takes (a raw e-mail);
    # the JSON and XML routes check their own, smaller limit.
    max_body_bytes: int = Field(default=15 * MIB, ge=1024, description="Raw e-mail limit.")
    max_json_bytes: int = Field(default=1 * MIB, ge=1024, description="JSON and XML limit.")
    raw_input_retention_days: int = Field(default=30, ge=1)
    # A message beyond these is quarantined (mime_too_complex) before it costs much CPU.
    email_max_parts: int = Field(default=1000, ge=1, description="MIME parts per e-mail.")
    email_max_depth: int = Field(default=20, ge=1, description="Nesting of MIME parts.")
    email_max_lines: int = Field(default=500_000, ge=1, description="Lines per e-mail.")

    facebook_verify_token: SecretStr | None = Field(
        default=None, description="The Verify Token typed in Meta's webhook settings."
    )
    facebook_app_secrets: list[SecretStr] = Field(
        default_factory=list,
        description="App secret(s) for X-Hub-Signature-256 (several during a rotation).",
    )
    facebook_graph_url: str = Field(default="https://graph.facebook.com")
    facebook_graph_version: str = Field(default="v25.0")
    facebook_page_token: SecretStr | None = Field(default=None)
    facebook_fetch_timeout_s: float = Field(default=10.0, gt=0)
    facebook_fetch_max_attempts: int = Field(
        default=12, ge=1, description="Tries before the notification goes to quarantine."
    )
    facebook_fetch_backoff_s: float = Field(default=2.0, gt=0)
    facebook_fetch_max_backoff_s: float = Field(default=900.0, gt=0)
    facebook_fetch_poll_interval_s: float = Field(
        default=5.0,
        gt=0,
        description="Fallback poll of the Graph API fetcher (a new notification wakes it).",
    )

    imap_host: str | None = Field(default=None, description="IMAP poller off when unset.")
    imap_port: int = 993
    imap_ssl: bool = True
    imap_user: str = ""
    imap_password: SecretStr | None = None
    imap_mailboxes: list[str] = Field(
        default_factory=lambda: ["INBOX"], description="Folders polled (JSON list)."
    )
    imap_processed_mailbox: str = "Processed"
    imap_poll_interval_s: float = Field(default=30.0, gt=0)
    imap_batch_size: int = Field(default=50, ge=1)

    sms_inbound_poll_interval_s: float = Field(
        default=15.0, gt=0, description="How often the worker asks the SMS provider for replies."
    )
    sms_inbound_match_wait_s: float = Field(
        default=600.0,
        ge=0,
        description="An SMS whose sender matches no lead yet is left at the provider this long "
        "(the SMS it answers may not be known here yet), then recorded as ignored.",
    )

    @property
    def mime_limits(self) -> MimeLimits:
        return MimeLimits(
            max_parts=self.email_max_parts,
            max_depth=self.email_max_depth,
            max_lines=self.email_max_lines,
        )
