"""Dispatch settings (env prefix ``DISPATCH_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class DispatchSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="DISPATCH_", extra="ignore", frozen=True, env_ignore_empty=True
    )
    service_name: ClassVar[str] = "dispatch"

    http_port: int = 8003
