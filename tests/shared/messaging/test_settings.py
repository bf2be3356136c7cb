"""The messaging settings mix into a service's settings and read its prefixed environment."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic_settings import SettingsConfigDict

from shared.messaging.lead_tokens import LeadTokens
from shared.messaging.settings import LeadTokenSettings, OvhSmsSettings, SmtpSettings
from shared.messaging.smtp_sender import SmtpSender
from shared.settings import ServiceSettings


class ExampleSettings(ServiceSettings, SmtpSettings, LeadTokenSettings, OvhSmsSettings):
    model_config = SettingsConfigDict(env_prefix="EXAMPLE_")
    service_name: ClassVar[str] = "example"


def test_defaults_send_nothing() -> None:
    settings = ExampleSettings()
    assert not SmtpSender(settings).configured
    assert not settings.ovh_configured
    assert settings.smtp_tls == "starttls"


def test_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXAMPLE_SMTP_HOST", "smtp.example.fr")
    monkeypatch.setenv("EXAMPLE_SMTP_PORT", "465")
    monkeypatch.setenv("EXAMPLE_SMTP_TLS", "tls")
    monkeypatch.setenv("EXAMPLE_SMTP_PASSWORD", "pw-7f3d9")
    monkeypatch.setenv("EXAMPLE_LEAD_TOKEN_KEY", "k1")
    monkeypatch.setenv("EXAMPLE_OVH_APPLICATION_KEY", "ak")
    monkeypatch.setenv("EXAMPLE_OVH_APPLICATION_SECRET", "as")
    monkeypatch.setenv("EXAMPLE_OVH_CONSUMER_KEY", "ck")
    monkeypatch.setenv("EXAMPLE_OVH_SMS_SERVICE_NAME", "sms-ab12345-1")
    settings = ExampleSettings()
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_tls) == (
        "smtp.example.fr",
        465,
        "tls",
    )
    assert settings.smtp_password is not None
    assert "pw-7f3d9" not in repr(settings)
    assert settings.ovh_configured
    lead = "0b9e4c1a-7f3d-4c1e-9a5b-2d6f8e0a1b2c"
    assert LeadTokens("k1").lead_of_token(LeadTokens(settings.lead_token_key).token(lead)) == lead
