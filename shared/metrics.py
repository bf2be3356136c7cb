"""Prometheus metrics. One registry per process (app or worker), built at start-up, never global.

Labels carry service names, routes, event types and outcomes only: never personal data.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


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

    def render(self) -> bytes:
        return generate_latest(self.registry)
