"""``ingest_inputs_total{channel, outcome}``: what ingest took in and what became of it.

Counted once the outcome is decided, per input (an ADF document with two prospects counts once,
by its first outcome). Labels are channels and outcomes only, never anything from the input.
"""

from __future__ import annotations

from shared.metrics import ServiceMetrics


def count_input(metrics: ServiceMetrics | None, channel: str, outcome: str) -> None:
    if metrics is not None:
        metrics.inputs_taken.labels(metrics.service, channel, outcome).inc()
