"""Prometheus metrics of erasures that wait (labels: service names only, never a request's or a
person's id)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class ErasureMetrics:
    def __init__(self, service: str, registry: CollectorRegistry) -> None:
        self.service = service
        self.reasks = Counter(
            "crm_erasure_reasks_total",
            "Erasure requests asked again of a service that had not answered in time.",
            ["service", "waiting_on"],
            registry=registry,
        )
        self.waiting = Gauge(
            "crm_erasures_waiting",
            "Open erasure requests older than CRM_ERASURE_REASK_AFTER_S still waiting on a"
            " service's answer (alert when above 0).",
            ["service", "waiting_on"],
            registry=registry,
        )
