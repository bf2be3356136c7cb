"""Prometheus metrics. One registry per process (app or worker), built at start-up, never global.

Labels carry service names, routes, event types and outcomes only: never personal data.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

SLA_MINUTE_BUCKETS: tuple[float, ...] = (1, 2, 5, 10, 15, 20, 30, 45, 60, 120, 240, 480, 960)
"""Business-minute buckets of the SLA stage histograms (targets 10, 15, 60 fall on edges)."""


class ServiceMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "http_requests_total",
            "HTTP requests by route template, method and status.",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request duration by route template.",
            ["service", "method", "route"],
            registry=self.registry,
        )
        self.events_consumed = Counter(
            "events_consumed_total",
            "Events handled by a consumer, by outcome"
            " (applied, duplicate, ignored, dead_lettered).",
            ["service", "consumer", "event_type", "outcome"],
            registry=self.registry,
        )
        self.inputs_taken = Counter(
            "ingest_inputs_total",
            "Inputs ingest took in, by channel (api, email, imap, facebook, facebook_graph) and"
            " outcome (accepted, duplicate, ignored, quarantined, pending).",
            ["service", "channel", "outcome"],
            registry=self.registry,
        )
        self.events_published = Counter(
            "events_published_total",
            "Events published by the outbox relay.",
            ["service", "event_type"],
            registry=self.registry,
        )
        self.outbox_backlog = Gauge(
            "outbox_backlog",
            "Outbox rows not yet published.",
            ["service"],
            registry=self.registry,
        )
        self.dead_letters = Gauge(
            "dead_letters",
            "Messages this service has sent to a DLQ (all time).",
            ["service"],
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "consumer_lag",
            "Records of a partition not yet consumed (high watermark minus committed offset).",
            ["service", "consumer", "topic", "partition"],
            registry=self.registry,
        )
        self.consumer_partitions = Gauge(
            "consumer_partitions",
            "Partitions this process's consumer reads now (the replicas of a consumer share"
            " its group's partitions).",
            ["service", "consumer"],
            registry=self.registry,
        )
        self.event_lag_seconds = Histogram(
            "event_lag_seconds",
            "Seconds from an event's creation (CloudEvents time) to its handling by a consumer.",
            ["service", "consumer", "event_type"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
            registry=self.registry,
        )
        self.sla_stage_duration = Histogram(
            "sla_stage_duration_business_minutes",
            "Duration of a lead's SLA stage in business minutes (calendar of the stage's clock).",
            ["service", "stage", "source"],
            buckets=SLA_MINUTE_BUCKETS,
            registry=self.registry,
        )
        self.sla_stage_wall = Histogram(
            "sla_stage_duration_seconds",
            "Duration of a lead's SLA stage in wall-clock seconds.",
            ["service", "stage", "source"],
            buckets=tuple(60 * minutes for minutes in SLA_MINUTE_BUCKETS),
            registry=self.registry,
        )
        self.sla_breaches = Counter(
            "sla_breaches_total",
            "SLA stages completed later than their target.",
            ["service", "stage", "source"],
            registry=self.registry,
        )

        # crm's managers' figures (docs/sla.md): sales, open stages near or past their target,
        # sellers' webhooks disabled. Labels: sources, stages and reasons only.
        self.leads_closed = Counter(
            "sla_leads_closed_total",
            "Leads closed, by outcome (won, lost, disqualified): conversion = won / all.",
            ["service", "source", "outcome"],
            registry=self.registry,
        )
        self.sales_revenue = Counter(
            "sales_revenue_eur_total",
            "Sum of the sale prices given with lead.won.v2, whole euros TTC.",
            ["service", "source"],
            registry=self.registry,
        )
        self.sla_open_stages = Gauge(
            "sla_open_stages",
            "Running SLA stages of open leads at risk (past the warning share) or overdue.",
            ["service", "stage", "state"],
            registry=self.registry,
        )
        self.webhooks_disabled = Counter(
            "seller_webhooks_disabled_total",
            "Sellers' webhook endpoints disabled by dispatch, as crm received them.",
            ["service", "reason"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
