"""The figures of one phase of the pipeline benchmark: legs per lead, CPU per process, the
offers each lead got, the idle cost. Pure computations over what the run recorded."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.pipeline.flow import OperatorTrace, Sent

OFFERED = "assignment.offered"
HARNESS = "benchmark (load + operator)"
POSTGRES = "PostgreSQL (all backends)"
KAFKA = "Kafka broker"
LEGS = (
    ("post", "POST answered (ingest API)"),
    ("visible", "POST → visible in qualify's queue"),
    ("operator", "visible → claim sent (operator: a free one of 32; not machine time)"),
    ("qualify_http", "claim + qualification answered (qualify API)"),
    ("offer", "qualification → webhook received by the seller's tool"),
    ("machine", "machine legs together (all but the operator row)"),
    ("end_to_end", "POST → webhook received (everything)"),
    ("crm", "POST → crm recorded the offer (timeline and SLA fact)"),
    ("first_answer", "POST → first answer e-mail handed to the SMTP server (issue 13)"),
)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: a p99 of 150 samples is a real sample)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Snapshot:
    """CPU seconds of each process (and the infrastructure) at one moment."""

    at: float
    cpu: dict[str, float]


def cpu_delta(before: Snapshot, after: Snapshot) -> dict[str, float]:
    return {name: after.cpu[name] - before.cpu.get(name, 0.0) for name in after.cpu}


@dataclass
class Webhooks:
    """What the seller's tool received for a set of leads."""

    first_offer_at: dict[str, float] = field(default_factory=dict)
    offers: Counter[str] = field(default_factory=Counter)  # distinct offered deliveries
    redelivered: int = 0  # the same webhook id received again (at-least-once retries)
    invalid: int = 0  # signature or timestamp refused
    types: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, records: Iterable[dict[str, Any]], leads: set[str]) -> Webhooks:
        result = cls()
        ids: set[str] = set()
        for record in records:
            lead_id = record.get("lead_id")
            if lead_id not in leads:
                continue
            if not record["valid"]:
                result.invalid += 1
                continue
            if record["id"] in ids:
                result.redelivered += 1
                continue
            ids.add(record["id"])
            result.types[record["type"]] += 1
            if record["type"] == OFFERED:
                result.offers[lead_id] += 1
                first = result.first_offer_at.get(lead_id)
                result.first_offer_at[lead_id] = (
                    record["at"] if first is None else min(first, record["at"])
                )
        return result


@dataclass
class PhaseResult:
    """One rate (or the warm-up) of one configuration."""

    rate: float
    seconds: float
    sent: list[Sent]
    traces: dict[str, OperatorTrace]
    webhooks: Webhooks
    crm_at: dict[str, float]
    cpu: dict[str, float]  # CPU seconds per process over the window
    window_s: float
    drained: bool
    settled: bool
    counters: dict[str, dict[str, float]]
    operator_failures: Counter[str]
    polls: int
    unqualified: set[str] = field(default_factory=set)  # the operator failed on them
    # Offers per lead at the end of the configuration, after a last wait for the late ones.
    final_offers: Counter[str] | None = None
    # When qualify handed each lead's first answer e-mail to the SMTP server (its ``sent_at``).
    answer_at: dict[str, float] = field(default_factory=dict)
    # Share of the machine's cores busy while the leads were sent (every process on it).
    machine_busy: float = math.nan

    @property
    def leads(self) -> list[str]:
        return [item.lead_id for item in self.sent if item.lead_id]

    @property
    def accepted(self) -> int:
        return len(self.leads)

    @property
    def post_errors(self) -> Counter[str]:
        return Counter(str(item.status or "no answer") for item in self.sent if item.status != 202)

    @property
    def offered_once(self) -> int:
        return sum(1 for lead in self.leads if self.webhooks.offers[lead] == 1)

    @property
    def _offers(self) -> Counter[str]:
        return self.final_offers if self.final_offers is not None else self.webhooks.offers

    @property
    def doubled(self) -> int:
        """Leads offered more than once (by the end of the configuration)."""
        return sum(1 for lead in self.leads if self._offers[lead] > 1)

    @property
    def missing(self) -> int:
        """Leads without an offer when the phase's drain cutoff passed (late or lost)."""
        return sum(1 for lead in self.leads if self.webhooks.offers[lead] == 0)

    @property
    def lost(self) -> int:
        """Qualified leads without an offer at the end of the configuration, after the last
        wait (a lead the operator failed to qualify is the harness's, counted apart)."""
        return sum(
            1 for lead in self.leads if self._offers[lead] == 0 and lead not in self.unqualified
        )

    def legs(self) -> dict[str, list[float]]:
        legs: dict[str, list[float]] = defaultdict(list)
        for item in self.sent:
            if item.answered_at is not None and item.status == 202:
                legs["post"].append(item.answered_at - item.scheduled_at)
            lead = item.lead_id
            if lead is None:
                continue
            trace = self.traces.get(lead)
            offer_at = self.webhooks.first_offer_at.get(lead)
            if lead in self.crm_at:
                legs["crm"].append(self.crm_at[lead] - item.scheduled_at)
            if lead in self.answer_at:
                legs["first_answer"].append(self.answer_at[lead] - item.scheduled_at)
            if offer_at is not None:
                legs["end_to_end"].append(offer_at - item.scheduled_at)
            if trace is None:
                continue
            visible = trace.visible_at - item.scheduled_at
            legs["visible"].append(visible)
            if trace.started_at is None or trace.qualified_at is None:
                continue
            legs["operator"].append(trace.started_at - trace.visible_at)
            legs["qualify_http"].append(trace.qualified_at - trace.started_at)
            if offer_at is None:
                continue
            offer = offer_at - trace.qualified_at
            legs["offer"].append(offer)
            legs["machine"].append(visible + (trace.qualified_at - trace.started_at) + offer)
        return legs

    def cpu_ms_per_lead(self, name: str, idle_per_s: float = 0.0) -> float:
        """CPU ms per accepted lead; less ``idle_per_s`` (CPU s per s the process spends with
        no traffic) over the window when given: the lead's own cost, above idle."""
        cpu = self.cpu.get(name, math.nan) - idle_per_s * self.window_s
        return 1000 * cpu / max(self.accepted, 1)


def summed(values: Iterable[float]) -> float:
    return sum(value for value in values if not math.isnan(value))


@dataclass
class ConfigResult:
    replicas: int
    partitions: int | None
    idle_cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds over idle_s
    idle_s: float = 0.0
    idle_xacts: dict[str, int] = field(default_factory=dict)
    poll_cost: dict[str, float] = field(default_factory=dict)  # qualify api CPU s, polls, s
    warmup: PhaseResult | None = None
    phases: list[PhaseResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    direct_routing: str = ""
    processes: list[str] = field(default_factory=list)
    profile: str | None = None
    final_wait_s: float = 0.0
    direct: PhaseResult | None = None  # direct routing: leads that skip qualification
    # More phases of the rates the CPU goal judges (after the tables' own phases, alternated
    # by rate): the goal takes each rate's median, so one noisy phase cannot decide it.
    cpu_rounds: list[PhaseResult] = field(default_factory=list)

    def idle_per_s(self, name: str) -> float:
        """CPU seconds per second the process spent idle (0 when unknown)."""
        return self.idle_cpu.get(name, 0.0) / self.idle_s if self.idle_s else 0.0

    def marginal_ms(self, phase: PhaseResult, name: str) -> float:
        return phase.cpu_ms_per_lead(name, self.idle_per_s(name))

    def services_ms(self, phase: PhaseResult) -> float:
        """CPU per lead of ``phase`` over all service processes, above idle."""
        return sum(self.marginal_ms(phase, name) for name in self.processes)
