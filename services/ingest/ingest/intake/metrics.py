"""``ingest_inputs_total{channel, outcome}``: what ingest took in and what became of it.

Counted once the outcome is decided, per input (an ADF document with two prospects counts once,
by its first outcome). Labels are channels and outcomes only, never anything from the input.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from prometheus_client import Counter

from shared.metrics import ServiceMetrics

# The labelled children, looked up once per (channel, outcome): ``labels()`` takes a lock and
# builds its key on every call (a JSON lead counts one). Bounded by channels x outcomes.
_children: WeakKeyDictionary[ServiceMetrics, dict[tuple[str, str], Counter]] = WeakKeyDictionary()


def count_input(metrics: ServiceMetrics | None, channel: str, outcome: str) -> None:
    if metrics is None:
        return
    children = _children.get(metrics)
    if children is None:
        children = _children[metrics] = {}
    child = children.get((channel, outcome))
    if child is None:
        child = children[(channel, outcome)] = metrics.inputs_taken.labels(
            metrics.service, channel, outcome
        )
    child.inc()
