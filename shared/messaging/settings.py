"""Settings of the messaging parts, as mixins of a service's settings (``<SVC>_SMTP_HOST`` …):

    class QualifySettings(ServiceSettings, SmtpSettings, LeadTokenSettings, OvhSmsSettings): ...

Each is also usable alone (``SmtpSettings(smtp_host=…)``). Nothing is required: without
``smtp_host`` or the OVH credentials, sending answers ``NotConfigured`` and messages wait.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

SmtpTls = Literal["none", "starttls", "tls"]


class SmtpSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    smtp_host: str | None = Field(
        default=None, description="SMTP server (None: not configured, messages wait)."
    )
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_tls: SmtpTls = Field(
        default="starttls",
        description="none (loopback test server only), starttls (required), tls (implicit, 465).",
    )
    smtp_validate_certs: bool = True
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = Field(default=15.0, gt=0)
    smtp_local_hostname: str | None = Field(default=None, description="Name sent in EHLO.")
    smtp_idle_s: float = Field(
        default=5.0,
        gt=0,
        description="How long a sender that reuses connections keeps an idle one open for the "
        "next message (well under the server's own idle timeout).",
    )


class LeadTokenSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    lead_token_key: SecretStr = Field(
        default=SecretStr("dev-only-lead-token-key"),
        description="HMAC key of the lead tokens in Reply-To and Message-ID (same in every "
        "service that sends or receives; a real secret in production).",
    )


class OvhSmsSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    ovh_endpoint: str = Field(
        default="https://eu.api.ovh.com/1.0", description="OVHcloud API base URL."
    )
    ovh_application_key: str | None = None
    ovh_application_secret: SecretStr | None = None
    ovh_consumer_key: SecretStr | None = None
    ovh_sms_service_name: str | None = Field(default=None, description="sms-xx12345-1")
    ovh_sms_sender: str | None = Field(
        default=None,
        description="A validated sender name; None: OVH's short number, to which people can "
        "reply (senderForResponse).",
    )
    ovh_sms_validity_minutes: int = Field(default=2880, ge=1)
    ovh_timeout_s: float = Field(default=10.0, gt=0)

    @property
    def ovh_configured(self) -> bool:
        return bool(
            self.ovh_application_key
            and self.ovh_application_secret
            and self.ovh_consumer_key
            and self.ovh_sms_service_name
        )
