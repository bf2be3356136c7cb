"""Qualify settings (env prefix ``QUALIFY_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class QualifySettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="QUALIFY_", extra="ignore", frozen=True, env_ignore_empty=True
    )
    service_name: ClassVar[str] = "qualify"

    http_port: int = 8002
