"""Dispatch's own Prometheus metrics, registered in the worker's registry (labels: kinds,
outcomes and catalogue/webhook event types only; never ids)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class DispatchMetrics:
    def __init__(self, service: str, registry: CollectorRegistry) -> None:
        self.service = service
        self.timers_fired = Counter(
            "dispatch_timers_fired_total",
            "Durable timers fired, by kind and outcome.",
            ["service", "kind", "outcome"],
            registry=registry,
        )
        self.webhook_attempts = Counter(
            "dispatch_webhook_attempts_total",
            "Webhook delivery attempts, by webhook event type and outcome.",
            ["service", "event_type", "outcome"],
            registry=registry,
        )
        self.webhook_latency = Histogram(
            "dispatch_webhook_latency_seconds",
            "Latency of webhook delivery attempts.",
            ["service"],
            registry=registry,
        )
