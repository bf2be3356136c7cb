"""Dispatch settings (env prefix ``DISPATCH_``)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, IPvAnyNetwork, model_validator
from pydantic_settings import SettingsConfigDict

from dispatch.webhooks.destinations import DestinationPolicy
from shared.settings import CallingRulesSettings, ServiceSettings


class DispatchSettings(CallingRulesSettings, ServiceSettings):
    """The legal calling window (first-contact deadlines, reminders) comes from
    ``CallingRulesSettings``: unprefixed ``CALLING_*`` variables, the same ones qualify reads."""

    model_config = SettingsConfigDict(
        env_prefix="DISPATCH_", extra="ignore", frozen=True, env_ignore_empty=True
    )
    service_name: ClassVar[str] = "dispatch"

    http_port: int = 8003
    public_base_url: str = Field(
        default="",
        description=(
            "Base of every URL sent to sellers' tools (call-backs, board). Default: this API's "
            "own address, http://<http_host>:<http_port> (127.0.0.1 for a wildcard host)."
        ),
    )
    routing_strategy: str = Field(default="least_loaded", description="Default strategy.")
    full_web_hours: str = Field(
        default="mon-fri 09:00-19:00; sat 09:00-18:00",
        description="Business hours of the full-web pool (deadlines in business time).",
    )
    default_accept_minutes: int = Field(default=10, ge=1)
    default_first_contact_minutes: int = Field(default=60, ge=1)
    default_followup_days: tuple[int, ...] = (1, 3, 7)
    reroute_after_minutes: int = Field(
        default=15, ge=1, description="Business minutes before an unassigned lead is retried."
    )
    at_risk_minutes: int = Field(default=5, ge=0, description="Board: deadline within this.")
    timer_batch_size: int = Field(default=50, ge=1)
    timer_poll_interval_s: float = Field(
        default=10.0,
        gt=0,
        description="Longest sleep of the timer loop (it sleeps till the next due timer).",
    )
    webhook_timeout_s: float = Field(default=15.0, gt=0)
    webhook_retry_schedule_s: tuple[int, ...] = Field(
        default=(0, 5, 300, 1800, 7200, 18000, 36000, 36000),
        description="Delay before each attempt (Svix schedule: 8 attempts over ~27 h 35 min).",
    )
    webhook_max_retry_after_s: int = Field(default=86400, ge=1)
    webhook_disable_after_failures: int = Field(
        default=20, ge=1, description="Consecutive failed attempts before auto-disable."
    )
    webhook_batch_size: int = Field(default=50, ge=1)
    webhook_poll_interval_s: float = Field(
        default=5.0,
        gt=0,
        description="Longest sleep of the webhook sender (a queued delivery wakes it).",
    )
    webhook_lease_s: int = Field(default=60, ge=1, description="In-flight claim of a delivery.")
    webhook_allowed_networks: tuple[IPvAnyNetwork, ...] = Field(
        default=(),
        description=(
            "Networks (CIDR, a JSON list) webhooks may reach beside public addresses: none by "
            'default; tests and make run allow loopback, ["127.0.0.0/8", "::1/128"].'
        ),
    )
    seller_feed_settle_s: float = Field(
        default=5.0,
        ge=0,
        description=(
            "The sellers' feed shows messages older than this: a message of a transaction still "
            "committing is never skipped by a cursor."
        ),
    )
    calendar_republish_interval_s: float = Field(
        default=86_400.0,
        gt=0,
        description="The worker re-publishes every calendar at start and then at this interval.",
    )
    people_republish_interval_s: float = Field(
        default=86_400.0,
        gt=0,
        description="The worker re-publishes every person and token at start, then this often.",
    )
    publish_lead_won_v1: bool = Field(
        default=True,
        description=(
            "Publish lead.won.v1 beside lead.won.v2 (sale price) until every consumer reads v2."
        ),
    )

    def webhook_destinations(self) -> DestinationPolicy:
        """Where webhooks may go: public addresses and ``webhook_allowed_networks``."""
        return DestinationPolicy(tuple(self.webhook_allowed_networks))

    @model_validator(mode="before")
    @classmethod
    def _public_base_url_follows_the_api(cls, data: Any) -> Any:
        """Unset, the call-back base is where this API listens (``http_host``/``http_port`` as
        configured), so a dispatch moved to another port still sends URLs that reach it."""
        if not isinstance(data, dict) or data.get("public_base_url"):
            return data
        host = str(data.get("http_host") or cls.model_fields["http_host"].default)
        port = data.get("http_port") or cls.model_fields["http_port"].default
        if host in _WILDCARD_HOSTS:
            host = "127.0.0.1"  # a bind-everything address is no address to call back
        elif ":" in host:
            host = f"[{host}]"  # IPv6 literal
        return {**data, "public_base_url": f"http://{host}:{port}"}


_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::"})
