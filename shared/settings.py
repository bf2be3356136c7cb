"""Settings base class. Each service subclasses it with its own env prefix (``INGEST_`` …).

Settings are built by the entry point and passed into ``create_app`` / the worker: nothing here is
instantiated at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

BusBackend = Literal["kafka", "embedded"]


class ServiceSettings(BaseSettings):
    """Fields every service has; a subclass sets ``service_name`` and its env prefix."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, env_ignore_empty=True)

    service_name: ClassVar[str] = "service"

    database_url: str = Field(
        default="",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///var/x.db or postgresql+asyncpg://…",
    )
    bus: BusBackend = Field(default="embedded", description="Event bus backend.")
    kafka_bootstrap_servers: str = Field(default="127.0.0.1:9092")
    kafka_publish_timeout_s: float = Field(
        default=20.0, gt=0, description="A publish not acknowledged by then has failed."
    )
    embedded_bus_path: Path = Field(
        default=Path("var/bus.db"), description="SQLite file of the embedded bus, shared by all."
    )
    topic_prefix: str = Field(default="", description="Prefix of every topic name (isolation).")
    topic_partitions: int = Field(default=3, ge=1)
    personal_data_retention_ms: int = Field(
        default=7 * 24 * 3600 * 1000,
        ge=60_000,
        description="retention.ms of topics that carry personal data.",
    )
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    dev_token: SecretStr | None = Field(
        default=None, description="Development token granted every role (never in production)."
    )
    privacy_hmac_key: SecretStr = Field(
        default=SecretStr("dev-only-privacy-key"),
        description="Key of the HMAC-SHA256 of contact keys (same value in every service).",
    )
    consumer_max_attempts: int = Field(default=5, ge=1, description="Tries before the DLQ.")
    consumer_retry_backoff_s: float = Field(default=0.2, ge=0)
    outbox_batch_size: int = Field(default=100, ge=1)
    outbox_poll_interval_s: float = Field(default=0.2, gt=0)
    worker_metrics_port: int | None = Field(
        default=None, description="Port of the worker's own /metrics (None: not served)."
    )

    def resolved_database_url(self) -> str:
        """The configured URL, or a SQLite file under var/ named after the service."""
        return self.database_url or f"sqlite+aiosqlite:///var/{self.service_name}.db"
