"""Settings base class. Each service subclasses it with its own env prefix (``INGEST_`` …).

Settings are built by the entry point and passed into ``create_app`` / the worker: nothing here is
instantiated at import time.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.business_time import DEFAULT_CALL_CENTRE_HOURS, BusinessCalendar, CalendarError
from shared.contact_rules import LEGAL_CALLING_HOURS, OPTIN_REGIME_START, CallingRules

BusBackend = Literal["kafka", "embedded"]

# Signature algorithms an OIDC access token may use: public-key ones only. ``none`` and the
# HMAC family (HS*) are never accepted: a service holds no shared secret with the provider, and
# accepting HS* would let a public key be used as an HMAC secret.
OIDC_ALGORITHMS: tuple[str, ...] = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def is_https_or_loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    return parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS


class ServiceSettings(BaseSettings):
    """Fields every service has; a subclass sets ``service_name`` and its env prefix."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, env_ignore_empty=True)

    service_name: ClassVar[str] = "service"

    database_url: str = Field(
        default="",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///var/x.db or postgresql+asyncpg://…",
    )
    database_pool_size: int = Field(
        default=20,
        ge=1,
        description=(
            "PostgreSQL connections a process keeps once opened. Sized above the requests a"
            " process serves at once (a call centre's operators): a connection opened beyond it"
            " is closed after use, and opening one (start-up, authentication, statements"
            " prepared again) costs more CPU than most requests."
        ),
    )
    database_max_overflow: int = Field(
        default=10, ge=0, description="Connections opened for the moment beyond the pool."
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
    topic_partitions: int = Field(
        default=12,
        ge=1,
        description=(
            "Partitions of the topics the worker creates: the most replicas of one consumer"
            " that can share the work (existing topics are not changed: docs/operations.md)."
        ),
    )
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
    outbox_poll_interval_s: float = Field(
        default=5.0,
        gt=0,
        description="Fallback poll of the outbox relay (a commit that stages events wakes it).",
    )
    gauge_interval_s: float = Field(
        default=15.0, gt=0, description="Seconds between updates of the backlog and lag gauges."
    )
    worker_metrics_port: int | None = Field(
        default=None, description="Port of the worker's own /metrics (None: not served)."
    )
    # Single sign-on: OIDC access tokens (JWT) beside API tokens. Off while oidc_issuer is unset.
    oidc_issuer: str | None = Field(
        default=None,
        description="Issuer of accepted OIDC access tokens (their `iss`, exactly); unset: none.",
    )
    oidc_audience: str | None = Field(
        default=None, description="Audience the access tokens must name in `aud` (required)."
    )
    oidc_jwks_url: str | None = Field(
        default=None,
        description="JWKS of the provider; unset: `jwks_uri` of the issuer's discovery document.",
    )
    oidc_roles_claim: str = Field(
        default="roles", description="Claim holding the roles (a dotted path: realm_access.roles)."
    )
    oidc_sites_claim: str = Field(
        default="sites", description="Claim holding the sites the person is limited to (if any)."
    )
    oidc_name_claim: str = Field(
        default="name", description="Claim naming the person (else `preferred_username`)."
    )
    oidc_algorithms: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("RS256", "PS256", "ES256"),
        description="Accepted signature algorithms, comma-separated (public-key ones only).",
    )
    oidc_leeway_s: float = Field(
        default=30.0, ge=0, le=300, description="Clock skew tolerated on `exp`, `nbf`, `iat`."
    )
    oidc_jwks_max_age_s: float = Field(
        default=3600.0, ge=60, description="Keys are fetched again after this age."
    )
    oidc_jwks_min_refresh_interval_s: float = Field(
        default=10.0,
        ge=0,
        description="At most one early fetch of the keys (unknown `kid`, failure) per interval.",
    )
    oidc_http_timeout_s: float = Field(default=5.0, gt=0, le=60)

    @field_validator("oidc_algorithms", mode="before")
    @classmethod
    def _split_algorithms(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _check_oidc(self) -> ServiceSettings:
        if self.oidc_issuer is None:
            if self.oidc_audience is not None or self.oidc_jwks_url is not None:
                raise ValueError("oidc_audience / oidc_jwks_url need oidc_issuer")
            return self
        if not self.oidc_audience:
            raise ValueError("oidc_issuer needs oidc_audience (no token for any audience)")
        for name, url in (("oidc_issuer", self.oidc_issuer), ("oidc_jwks_url", self.oidc_jwks_url)):
            if url is not None and not is_https_or_loopback(url):
                raise ValueError(f"{name} must be an https URL (http only on 127.0.0.1/localhost)")
        unsafe = sorted(set(self.oidc_algorithms).difference(OIDC_ALGORITHMS))
        if unsafe or not self.oidc_algorithms:
            raise ValueError(
                f"oidc_algorithms must be a non-empty subset of {', '.join(OIDC_ALGORITHMS)}"
            )
        return self

    @property
    def oidc_enabled(self) -> bool:
        return self.oidc_issuer is not None

    def resolved_database_url(self) -> str:
        """The configured URL, or a SQLite file under var/ named after the service."""
        return self.database_url or f"sqlite+aiosqlite:///var/{self.service_name}.db"


class CallingRulesSettings(BaseSettings):
    """The legal calling rules (``shared.contact_rules.CallingRules``), read from the same
    **unprefixed** variables (``CALLING_HOURS``, ``CALLING_TIMEZONE``…) by every service that
    places or plans calls (qualify's operators, dispatch's first-contact deadlines and
    reminders): one configuration, one set of rules. Mixed into a service's settings before
    ``ServiceSettings``; ``validation_alias`` bypasses the service's env prefix, and the field
    names stay accepted as keyword arguments."""

    model_config = SettingsConfigDict(validate_by_name=True, validate_by_alias=True)

    calling_hours: str = Field(
        default=LEGAL_CALLING_HOURS,
        validation_alias="CALLING_HOURS",
        description="Legal calling window (D223-9), weekly hours in the consumer's time zone.",
    )
    calling_timezone: str = Field(default="Europe/Paris", validation_alias="CALLING_TIMEZONE")
    calling_holiday_subdivision: str | None = Field(
        default=None,
        validation_alias="CALLING_HOLIDAY_SUBDIVISION",
        description="Regional holidays of the consumers (None: the national list).",
    )
    calling_max_calls: int = Field(default=4, ge=1, validation_alias="CALLING_MAX_CALLS")
    calling_period_days: int = Field(default=30, ge=1, validation_alias="CALLING_PERIOD_DAYS")
    refusal_block_days: int = Field(default=60, ge=1, validation_alias="CALLING_REFUSAL_BLOCK_DAYS")
    refusal_permanent_from: date | None = Field(
        default=OPTIN_REGIME_START, validation_alias="CALLING_REFUSAL_PERMANENT_FROM"
    )
    own_request_exempt: bool = Field(
        default=True,
        validation_alias="CALLING_OWN_REQUEST_EXEMPT",
        description="An answer to the consumer's own enquiry may be outside the legal hours.",
    )
    own_request_max_age_hours: int = Field(
        default=48, ge=0, validation_alias="CALLING_OWN_REQUEST_MAX_AGE_HOURS"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_prefixed_copy(cls, data: Any) -> Any:
        """``<SVC>_CALLING_HOURS`` and the like would be a second configuration (it is what
        qualify read before): refused at start, naming the variable to set instead."""
        prefix = str(cls.model_config.get("env_prefix") or "").upper()
        if prefix:
            present = {name.upper() for name in os.environ}
            stale = sorted(
                f"{prefix}{name.upper()}"
                for name in CallingRulesSettings.model_fields
                if f"{prefix}{name.upper()}" in present
            )
            if stale:
                raise ValueError(
                    f"{', '.join(stale)}: the calling rules are read from the unprefixed CALLING_* "
                    "variables only (one configuration for every service)"
                )
        return data

    @model_validator(mode="after")
    def _rules_build(self) -> Self:
        """Hours, time zone and subdivision are checked once, when the settings load."""
        try:
            ZoneInfo(self.calling_timezone)
            self.calling_rules()
        except (CalendarError, ValueError, KeyError) as exc:
            raise ValueError(f"invalid calling rules: {exc}") from None
        return self

    def calling_rules(self) -> CallingRules:
        """The rules these settings describe (built once per distinct configuration)."""
        return _calling_rules(
            self.calling_hours,
            self.calling_timezone,
            self.calling_holiday_subdivision,
            self.calling_max_calls,
            self.calling_period_days,
            self.refusal_block_days,
            self.refusal_permanent_from,
            self.own_request_exempt,
            self.own_request_max_age_hours,
        )


class CallCentreSettings(BaseSettings):
    """The call centre's opening hours (its business calendar), read from the same
    **unprefixed** variables (``CALL_CENTRE_HOURS``, ``CALL_CENTRE_TIMEZONE``,
    ``CALL_CENTRE_HOLIDAY_SUBDIVISION``, ``CALL_CENTRE_CLOSURES``) by every service that counts
    the operators' business time: qualify's queue deadlines and crm's SLA stages of the
    operators. One configuration, one calendar. The former per-service variables are refused at
    start, naming the one to set instead."""

    model_config = SettingsConfigDict(validate_by_name=True, validate_by_alias=True)

    call_centre_hours: str = Field(
        default=DEFAULT_CALL_CENTRE_HOURS,
        validation_alias="CALL_CENTRE_HOURS",
        description="Operators' opening hours, e.g. \"mon-fri 09:00-12:30,13:30-19:00; "
        'sat 09:00-12:30" (local time, business_time.parse_weekly_hours syntax).',
    )
    call_centre_timezone: str = Field(
        default="Europe/Paris", validation_alias="CALL_CENTRE_TIMEZONE"
    )
    call_centre_holiday_subdivision: str | None = Field(
        default=None,
        validation_alias="CALL_CENTRE_HOLIDAY_SUBDIVISION",
        description='French subdivision of the public holidays ("57", "6AE" Alsace-Moselle…).',
    )
    call_centre_closures: list[date] = Field(
        default_factory=list,
        validation_alias="CALL_CENTRE_CLOSURES",
        description="Extra closed days of the call centre (JSON list of dates).",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_former_variable(cls, data: Any) -> Any:
        prefix = str(cls.model_config.get("env_prefix") or "").upper()
        if prefix:
            present = {name.upper() for name in os.environ}
            stale = sorted(
                name
                for name in (
                    *FORMER_CALL_CENTRE_VARIABLES,
                    *(f"{prefix}{field.upper()}" for field in CallCentreSettings.model_fields),
                )
                if name.startswith(prefix) and name in present
            )
            if stale:
                raise ValueError(
                    f"{', '.join(stale)}: the call centre's hours are read from the unprefixed "
                    "CALL_CENTRE_* variables only (one configuration for every service)"
                )
        return data

    @model_validator(mode="after")
    def _calendar_builds(self) -> Self:
        try:
            self.call_centre_calendar()
        except (CalendarError, ValueError, KeyError) as exc:
            raise ValueError(f"invalid call centre calendar: {exc}") from None
        return self

    def call_centre_calendar(self) -> BusinessCalendar:
        """The call centre's calendar (built once per distinct configuration)."""
        return _call_centre_calendar(
            self.call_centre_hours,
            self.call_centre_timezone,
            self.call_centre_holiday_subdivision,
            tuple(sorted(self.call_centre_closures)),
        )


FORMER_CALL_CENTRE_VARIABLES: tuple[str, ...] = (
    "QUALIFY_BUSINESS_HOURS",
    "QUALIFY_BUSINESS_TIMEZONE",
    "QUALIFY_HOLIDAY_SUBDIVISION",
    "QUALIFY_CLOSURES",
    "CRM_SLA_CALL_CENTRE_HOURS",
    "CRM_SLA_HOLIDAY_SUBDIVISION",
)
"""What qualify and crm read before ``CallCentreSettings``: refused, so none is silently ignored."""


@lru_cache(maxsize=16)
def _call_centre_calendar(
    hours: str, timezone: str, subdivision: str | None, closures: tuple[date, ...]
) -> BusinessCalendar:
    return BusinessCalendar.from_spec(
        hours, timezone=timezone, subdivision=subdivision, closures=closures
    )


@lru_cache(maxsize=16)
def _calling_rules(
    hours: str,
    timezone: str,
    subdivision: str | None,
    max_calls: int,
    period_days: int,
    refusal_block_days: int,
    refusal_permanent_from: date | None,
    own_request_exempt: bool,
    own_request_max_age_hours: int,
) -> CallingRules:
    return CallingRules(
        hours=hours,
        timezone=timezone,
        subdivision=subdivision,
        max_calls=max_calls,
        period=timedelta(days=period_days),
        refusal_block=timedelta(days=refusal_block_days),
        refusal_permanent_from=refusal_permanent_from,
        own_request_exempt=own_request_exempt,
        own_request_max_age=timedelta(hours=own_request_max_age_hours),
    )
