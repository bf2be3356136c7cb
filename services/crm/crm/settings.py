"""Crm settings (env prefix ``CRM_``)."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import CallCentreSettings, ServiceSettings


class CrmSettings(CallCentreSettings, ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CRM_", extra="ignore", frozen=True, env_ignore_empty=True
    )
    service_name: ClassVar[str] = "crm"

    http_port: int = 8004

    # GDPR (crm/privacy, docs/operations.md).
    client_retention_days: int = Field(
        default=3 * 365,
        ge=1,
        description="Prospects are erased this long after their last contact.",
    )
    retention_check_interval_s: float = Field(
        default=3600, gt=0, description="How often the worker checks whether a daily run is due."
    )
    retention_batch_size: int = Field(default=500, ge=1, le=10_000)
    erasure_reask_after_s: float = Field(
        default=300,
        gt=0,
        description=(
            "An erasure request still waiting on a service this long after it was last asked is"
            " asked again of the services that have not answered, with an alert."
        ),
    )
    erasure_reask_check_interval_s: float = Field(
        default=30, gt=0, description="How often the worker looks for erasures waiting too long."
    )

    # Managers' SLA (crm/sla, docs/sla.md): targets, at-risk warning, query bounds. The call
    # centre's calendar comes from CallCentreSettings (unprefixed CALL_CENTRE_*, as qualify);
    # the sites' come as events from dispatch.
    sla_targets_minutes: dict[str, float] = Field(
        default_factory=lambda: {"first_attempt": 15.0, "accepted": 10.0, "seller_contact": 60.0},
        description="Target per stage in business minutes (JSON); stages without one never breach.",
    )
    sla_at_risk_ratio: float = Field(
        default=0.8,
        gt=0,
        lt=1,
        description="Running stages past this share of the target are at risk.",
    )
    sla_max_range_days: int = Field(default=400, ge=1, description="Widest from/to range accepted.")
    sla_columnar_copy: bool = Field(
        default=True,
        description="PostgreSQL: the API keeps a columnar copy of the facts for the summary "
        "(about 150 bytes a lead in memory; crm/sla/fact_copy/).",
    )

    # Managers' alerts feed (crm/alerts, docs/sla.md).
    alerts_webhook_window_days: int = Field(
        default=7, ge=1, le=366, description="How long a disabled webhook stays in the feed."
    )
    alerts_gauge_interval_s: float = Field(
        default=60, gt=0, description="How often the worker counts open stages at risk/overdue."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_site_hours(cls, data: Any) -> Any:
        """The sites' hours were crm settings once; now dispatch's calendars are the only truth:
        a leftover variable would look applied while it is not, so the start-up stops."""
        stale = sorted(name for name in REMOVED_VARIABLES if name in os.environ)
        if stale:
            raise ValueError(
                f"{', '.join(stale)}: removed; the sites' hours come from dispatch "
                "(site.calendar-changed.v1, set through /v1/sites), see docs/sla.md"
            )
        return data


REMOVED_VARIABLES = ("CRM_SLA_SITE_HOURS", "CRM_SLA_HOURS_BY_SITE")
