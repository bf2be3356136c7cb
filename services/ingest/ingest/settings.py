"""Ingest settings (env prefix ``INGEST_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore", frozen=True)
    service_name: ClassVar[str] = "ingest"

    http_port: int = 8001
