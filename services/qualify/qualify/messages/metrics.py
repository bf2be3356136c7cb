"""Qualify's messaging metrics, registered in the worker's registry (labels: channel, kind and
outcome codes only; never an id, an address or a text)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class MessagingMetrics:
    def __init__(self, service: str, registry: CollectorRegistry) -> None:
        self.service = service
        self.sends = Counter(
            "qualify_message_sends_total",
            "Sending attempts of messages to prospects, by channel, kind and outcome (sent, "
            "retry, failed, unconfirmed, cancelled, claim_lost, requeued, recovered_sent).",
            ["service", "channel", "kind", "outcome"],
            registry=registry,
        )
        self.handover_seconds = Histogram(
            "qualify_message_handover_seconds",
            "Seconds from a message's decision to its acceptance by the SMTP server or the SMS "
            "provider (the first answer's promise: within 60 s).",
            ["service", "channel", "kind"],
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600),
            registry=registry,
        )

    def send(self, channel: str, kind: str, outcome: str) -> None:
        self.sends.labels(self.service, channel, kind, outcome).inc()
