"""Bodies of the routing rules API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from qualify.models import RoutingRule, RuleScope
from qualify.settings import DirectIntent
from shared.events.payloads import RoutingPath, SalesChannel

SITE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SourceRuleIn(Strict):
    path: RoutingPath
    channel: SalesChannel | None = Field(
        default=None,
        description="Sales channel of the machine qualification (direct); default "
        "QUALIFY_DIRECT_CHANNEL. in_store without a site: dispatch's site holding the vehicle.",
    )
    intent: DirectIntent | None = Field(default=None, description="Default QUALIFY_DIRECT_INTENT.")


class SiteRuleIn(SourceRuleIn):
    ad_ref_prefixes: list[str] = Field(
        min_length=1,
        max_length=50,
        description="The site's leads are those whose ad reference starts with one of these "
        "(case-insensitive; the longest match among sites wins): qualify learns no site at "
        "receipt otherwise.",
    )

    @field_validator("ad_ref_prefixes")
    @classmethod
    def prefixes(cls, value: list[str]) -> list[str]:
        cleaned = [prefix.strip() for prefix in value]
        if any(not 1 <= len(prefix) <= 100 for prefix in cleaned):
            raise ValueError("each prefix has 1 to 100 characters")
        return cleaned


class RuleOut(BaseModel):
    scope: RuleScope
    key: str = Field(description="The source, or the site code.")
    path: RoutingPath
    channel: SalesChannel | None
    intent: DirectIntent | None
    ad_ref_prefixes: list[str]
    updated_at: datetime
    updated_by: str

    @classmethod
    def of(cls, rule: RoutingRule) -> RuleOut:
        return cls(
            scope=rule.scope,
            key=rule.key,
            path=rule.path,
            channel=rule.channel,
            intent=rule.intent,
            ad_ref_prefixes=list(rule.ad_ref_prefixes or []),
            updated_at=rule.updated_at,
            updated_by=rule.updated_by,
        )


class RoutingDefaults(BaseModel):
    path: RoutingPath
    channel: SalesChannel
    intent: DirectIntent


class RoutingPolicyOut(BaseModel):
    """Site rules first (matched by ad reference), then source rules, then the default."""

    default: RoutingDefaults = Field(description="From the settings (QUALIFY_ROUTING_*).")
    rules: list[RuleOut]
