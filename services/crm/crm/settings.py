"""Crm settings (env prefix ``CRM_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class CrmSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CRM_", extra="ignore", frozen=True, env_ignore_empty=True
    )
    service_name: ClassVar[str] = "crm"

    http_port: int = 8004
