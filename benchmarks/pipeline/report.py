"""The pipeline section of docs/benchmarks.md: the method, how to read it, the tables of each
configuration, the goals of issue 12 checked against this run, and what 100 leads/s needs,
computed from this run's own CPU per lead."""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence

from benchmarks.pipeline.measure import (
    KAFKA,
    LEGS,
    OFFERED,
    POSTGRES,
    ConfigResult,
    PhaseResult,
    percentile,
)

# Capacity planning: keep a single-threaded process at most this busy (queueing grows as
# u/(1-u): at 50 % a request waits about one service time), and the machine below this.
PROCESS_UTILISATION = 0.5
MACHINE_UTILISATION = 0.6
TARGET_RATE = 100
TARGET_MINUTES = 5
CPU_GOAL_MS = 25.0  # issue 12: CPU per lead over all service processes
CPU_GOAL_FROM_RATE = 20.0  # judged at this rate and above

HOW_TO_READ = """\
**How to read this section.** Each configuration starts the whole system afresh (new
databases, new topics) as real processes, the way `make run` or docker does: per service one
API process (uvicorn) and one or two worker processes. Leads are POSTed to ingest open-loop:
lead *n* leaves at *start + n / rate* whatever the earlier ones are doing, so a system that
falls behind gets more concurrent requests, as in life, and every latency counts from the
scheduled time. A scripted operator polls qualify's queue (every 100 ms, all pages) and
claims and qualifies each new lead at once with no think time (32 operators at most at the
same time); the load generator and the operator use a minimal HTTP/1.1 client, so that the
harness costs little next to the services. The sellers' tool is a separate
process that verifies each webhook's Standard Webhooks signature and records its arrival.
Each lead's first answer goes to the local Postfix (`scripts/smtp.sh`), which accepts it and
drops it: the bench's prospects are on its discard domain, where a real prospect's mailbox is
far away (before, each answer bounced back into the dealer's mailbox here, a delivery per lead
that real prospects do not cause).

- *Legs* are per lead, p50 / p99 in milliseconds over the leads of the rate. "Visible in
  qualify's queue" is the first poll that lists the lead, so it carries up to one poll interval
  (100 ms) of resolution. The operator row is not machine time (the operator's reaction, ~0
  here, and any wait for one of the 32 operators); *machine legs together* is everything
  else, the figure the goals speak of. "crm recorded the offer" is the latest
  `processed_at` of the `assignment.offered` event over crm's consumers (timeline and SLA
  fact).
- *CPU per lead* is each process's user + system CPU (`/proc/<pid>/stat`) over the phase's
  window (first POST → every offer received and the system quiet), less what the process
  spends idle over as long (measured in the idle window), divided by the leads accepted: the
  leads' own cost ("~0": less than the process spends idle, within the noise). The raw
  figure (idle included) is given for the sum; with short windows and an idle system that
  burns CPU, the idle share is large. In qualify's API it includes
  the operator's queue polls (their cost alone is given under *Idle*). With one replica, the
  rates the CPU goal judges (20 leads/s and up) run more than once: the tables show the first
  phase of each rate, the goal row each round and the median it judges. PostgreSQL (postmaster
  and every backend) and the Kafka broker are measured the same way when they run on this
  machine; they are not in the services' sum. The benchmark's own process (load generator and
  operator) and the receiver are shown for transparency. *Machine busy* is the share of all
  the machine's cores not idle (`/proc/stat`) while the leads are sent: every process counts,
  the mail servers (Postfix, Dovecot), the kernel's writeback and the machine's other work
  included.
- *Leads*: every accepted lead must get exactly one `assignment.offered` webhook. "No offer"
  counts leads without one when the drain cutoff passed (late or lost); after the last rate
  the run waits for those once more, and a qualified lead still without an offer then is
  "lost" (a lead the harness's operator failed to qualify is counted under operator failures);
  "doubled" counts leads offered twice; a redelivered webhook (same `webhook-id`) is counted
  apart, it is at-least-once delivery, not a second offer.
- With two replicas, the per-process rows show how the work split: each worker's CPU and what
  it handled (events applied per consumer, events its outbox relay published, webhooks sent).
- This machine has 2 cores and is shared: the load average in the stamp says how busy it was.
  Absolute latencies move with it; compare configurations and rates of the same run."""


def _ms(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{1000 * value:,.0f}"


def _p50_p99(values: Sequence[float]) -> str:
    if not values:
        return "n/a"
    return f"{_ms(percentile(values, 0.5))} / {_ms(percentile(values, 0.99))}"


def _num(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value + 0.0:,.{digits}f}".replace("-0.0", "0.0")


def _marginal(value: float) -> str:
    """CPU above idle; below zero is idle noise (the process did less than when idle)."""
    return "~0" if not math.isnan(value) and value < 0.05 else _num(value)


def _rate(phase: PhaseResult) -> str:
    return f"{phase.rate:g} leads/s"


def _latency_table(config: ConfigResult) -> str:
    phases = config.phases
    rows = ["| leg (ms, p50 / p99) | " + " | ".join(_rate(p) for p in phases) + " |"]
    rows.append("|---|" + "---:|" * len(phases))
    legs = [phase.legs() for phase in phases]
    for key, title in LEGS:
        label = f"**{title}**" if key == "machine" else title
        rows.append(f"| {label} | " + " | ".join(_p50_p99(leg[key]) for leg in legs) + " |")
    return "\n".join(rows)


def _leads_table(config: ConfigResult) -> str:
    phases = config.phases
    rows = ["| | " + " | ".join(_rate(p) for p in phases) + " |", "|---|" + "---:|" * len(phases)]

    def row(title: str, values: Sequence[object]) -> None:
        rows.append(f"| {title} | " + " | ".join(str(v) for v in values) + " |")

    row("sent / accepted", [f"{len(p.sent)} / {p.accepted}" for p in phases])
    row("POST errors", [
        ", ".join(f"{status} x{n}" for status, n in sorted(p.post_errors.items())) or "none"
        for p in phases
    ])  # fmt: skip
    row("offered exactly once at the cutoff", [p.offered_once for p in phases])
    row("no offer at the cutoff (late or lost)", [p.missing for p in phases])
    wait = f" ({config.final_wait_s:.0f} s more)" if config.final_wait_s >= 1 else ""
    row(f"**lost: still no offer at the end{wait}**", [p.lost for p in phases])
    row("**doubled (two offers or more)**", [p.doubled for p in phases])
    row("redelivered webhooks / bad signatures", [
        f"{p.webhooks.redelivered} / {p.webhooks.invalid}" for p in phases
    ])  # fmt: skip
    row("other webhooks", [
        ", ".join(f"{t} {n}" for t, n in sorted(p.webhooks.types.items()) if t != OFFERED)
        or "none" for p in phases
    ])  # fmt: skip
    row("operator failures (leads not qualified)", [
        (", ".join(f"{k} {n}" for k, n in sorted(p.operator_failures.items())) or "none")
        + (f" ({len(p.unqualified)})" if p.unqualified else "")
        for p in phases
    ])  # fmt: skip
    row(f"machine busy while leads arrive (% of its {os.cpu_count()} cores, every process)", [
        _busy(p) for p in phases
    ])  # fmt: skip
    row("window s (all drained / quiet)", [
        f"{p.window_s:.0f} ({'yes' if p.drained else 'NO'} / {'yes' if p.settled else 'no'})"
        for p in phases
    ])  # fmt: skip
    return "\n".join(rows)


def _cpu_table(config: ConfigResult, infra_names: tuple[str, ...]) -> str:
    """Per process: idle % of a core, and CPU ms per lead above idle at each rate."""
    phases = config.phases
    rows = [
        "| process | idle, % of a core | "
        + " | ".join(f"ms/lead at {p.rate:g}/s" for p in phases)
        + " |",
        "|---|---:|" + "---:|" * len(phases),
    ]
    services = config.processes

    def add(name: str, idle: str, cells: list[str]) -> None:
        rows.append(f"| {name} | {idle} | " + " | ".join(cells) + " |")

    for name in services:
        add(
            name,
            _num(100 * config.idle_per_s(name)),
            [_marginal(config.marginal_ms(p, name)) for p in phases],
        )
    idle_total = sum(config.idle_per_s(name) for name in services)
    add(
        "**all service processes, above idle**",
        f"**{_num(100 * idle_total)}**",
        [f"**{_num(sum(config.marginal_ms(p, n) for n in services))}**" for p in phases],
    )
    add(
        "all service processes, idle included (raw)",
        "",
        [_num(sum(p.cpu_ms_per_lead(n) for n in services)) for p in phases],
    )
    for name in (*infra_names, "receiver"):
        if name not in config.idle_cpu:
            continue
        add(
            name,
            _num(100 * config.idle_per_s(name)),
            [_marginal(config.marginal_ms(p, name)) for p in phases],
        )
    return "\n".join(rows)


def _direct_table(config: ConfigResult) -> str:
    """Direct routing: leads that skip the operator, POST → webhook and CPU per lead."""
    phase = config.direct
    assert phase is not None
    legs = phase.legs()
    cpu = sum(config.marginal_ms(phase, name) for name in config.processes)
    return (
        f"Direct routing (issue 13: a `direct` policy for the lead's source, set through "
        f"qualify's routing API; no operator): {phase.rate:g} leads/s for {phase.seconds:.0f} s."
        "\n\n| figure | value |\n|---|---:|\n"
        f"| sent / accepted | {len(phase.sent)} / {phase.accepted} |\n"
        f"| POST answered, p50 / p99 ms | {_p50_p99(legs['post'])} |\n"
        f"| **POST → webhook received (all machine), p50 / p99 ms** | "
        f"{_p50_p99(legs['end_to_end'])} |\n"
        f"| POST → crm recorded the offer, p50 / p99 ms | {_p50_p99(legs['crm'])} |\n"
        f"| POST → first answer handed to SMTP, p50 / p99 ms | "
        f"{_p50_p99(legs['first_answer'])} |\n"
        f"| offered exactly once / no offer at the cutoff / doubled | {phase.offered_once} / "
        f"{phase.missing} / {phase.doubled} |\n"
        f"| CPU per lead, all service processes above idle (ms) | {_num(cpu)} |\n"
        f"| machine busy while leads arrive (% of its {os.cpu_count()} cores, every process) | "
        f"{_busy(phase)} |\n"
        f"| window s (all drained / quiet) | {phase.window_s:.0f} "
        f"({'yes' if phase.drained else 'NO'} / {'yes' if phase.settled else 'no'}) |"
    )


def _busy(phase: PhaseResult) -> str:
    return "n/a" if math.isnan(phase.machine_busy) else f"{100 * phase.machine_busy:.0f} %"


def _handled_table(config: ConfigResult) -> str:
    """Per worker process, over all rates: what it handled."""
    workers = [name for name in config.processes if " worker" in name]
    totals: dict[str, dict[str, float]] = {name: {} for name in workers}
    for phase in config.phases:
        for name, counters in phase.counters.items():
            for key, value in counters.items():
                totals.setdefault(name, {})[key] = totals.get(name, {}).get(key, 0.0) + value
    rows = [
        "| worker process | CPU s (all rates) | events applied (by consumer) | "
        "events published | webhooks sent |",
        "|---|---:|---|---:|---:|",
    ]
    for name in workers:
        counters = totals.get(name, {})
        applied = ", ".join(
            f"{key.removesuffix(' applied')} {value:,.0f}"
            for key, value in sorted(counters.items())
            if key.endswith(" applied") and value
        )
        webhooks = sum(value for key, value in counters.items() if key.startswith("webhooks"))
        cpu = sum(phase.cpu.get(name, 0.0) for phase in config.phases)
        rows.append(
            f"| {name} | {cpu:,.1f} | {applied or 'none'} | "
            f"{counters.get('published', 0.0):,.0f} | {webhooks:,.0f} |"
        )
    return "\n".join(rows)


def _idle_text(config: ConfigResult) -> str:
    seconds = config.idle_s or math.nan
    per_db = ", ".join(
        f"{name} {count / seconds:.1f}" for name, count in sorted(config.idle_xacts.items())
    )
    total_tx = sum(config.idle_xacts.values()) / seconds
    services_cpu = sum(config.idle_cpu.get(name, 0.0) for name in config.processes)
    poll = config.poll_cost
    poll_text = ""
    if poll:
        poll_rate = poll["polls"] / poll["seconds"]
        poll_text = (
            f" The operator's queue polls alone (no leads, {poll_rate:.1f} requests/s) cost "
            f"qualify's API {100 * poll['cpu_s'] / poll['seconds']:.1f} % of a core, "
            f"{1000 * poll['cpu_s'] / max(poll['polls'], 1):.1f} ms per poll: at 5 leads/s "
            f"that is {1000 * poll['cpu_s'] / poll['seconds'] / 5:.1f} ms of the qualify API's "
            "CPU per lead that a real operator's screen would cost too, but is not the lead's."
        )
    return (
        f"Idle ({config.idle_s:.0f} s, no traffic, no operator): the service processes use "
        f"**{100 * services_cpu / seconds:.1f} % of one core** together; the four databases "
        f"commit **{total_tx:.1f} transactions/s** ({per_db}; the window starts 12 s after "
        "the warm-up: PostgreSQL flushes an idle connection's statistics up to 10 s late)."
        + poll_text
    )


def _reference(config: ConfigResult) -> PhaseResult | None:
    """The highest rate that drained: the CPU per lead the capacity paragraph builds on."""
    drained = [phase for phase in config.phases if phase.drained]
    return max(drained, key=lambda phase: phase.rate) if drained else None


def _capacity(config: ConfigResult) -> str:
    reference = _reference(config)
    if reference is None:
        return "No rate drained in this run: nothing to build the estimate on."
    services = config.processes
    per_process = {name: config.marginal_ms(reference, name) for name in services}
    kinds: dict[str, float] = {}
    for name, value in per_process.items():
        kind = " ".join(name.split()[:2])  # "dispatch worker 2" -> "dispatch worker"
        kinds[kind] = kinds.get(kind, 0.0) + value
    service_ms = sum(kinds.values())
    pg_ms = config.marginal_ms(reference, POSTGRES)
    kafka_ms = config.marginal_ms(reference, KAFKA)
    infra_ms = (0.0 if math.isnan(pg_ms) else pg_ms) + (0.0 if math.isnan(kafka_ms) else kafka_ms)
    replicas = {
        kind: max(1, math.ceil(TARGET_RATE * ms / 1000 / PROCESS_UTILISATION))
        for kind, ms in kinds.items()
    }
    worker_replicas = max(
        (count for kind, count in replicas.items() if kind.endswith("worker")), default=1
    )
    partitions = max(6, 2 * worker_replicas)
    busy_cores = TARGET_RATE * (service_ms + infra_ms) / 1000
    cores = math.ceil(busy_cores / MACHINE_UTILISATION)
    plan = ", ".join(f"{kind} x{count}" for kind, count in sorted(replicas.items()))
    lines = [
        f"From this run's own figures ({config.replicas} replica(s) per worker, at "
        f"{reference.rate:g} leads/s, the highest rate that drained): the services spend "
        f"**{service_ms:.1f} ms of CPU per lead** above idle, PostgreSQL {_num(pg_ms)} ms and "
        f"Kafka {_num(kafka_ms)} ms (idle costs are small beside {TARGET_RATE} leads/s and "
        f"are left out). {TARGET_RATE} leads/s for {TARGET_MINUTES} minutes "
        f"({TARGET_RATE * TARGET_MINUTES * 60:,} leads) therefore keeps "
        f"**{busy_cores:.1f} cores busy** ({TARGET_RATE * service_ms / 1000:.1f} for the services,"
        f" {TARGET_RATE * infra_ms / 1000:.1f} for PostgreSQL and Kafka).",
        "",
        f"- **Cores: {cores}** (busy cores / {MACHINE_UTILISATION:.0%}, the load a machine can "
        "carry before the queues it builds eat the latency budget).",
        f"- **Replicas** (each a single-threaded Python process kept at most "
        f"{PROCESS_UTILISATION:.0%} busy; API processes behind one port or a balancer): {plan}.",
        f"- **Partitions: {partitions}** per topic (at least the largest consumer group, "
        f"{worker_replicas} worker replica(s), doubled so replicas can be added without "
        "re-partitioning, which would move keys and break per-lead order).",
    ]
    machine = reference.legs()["machine"]
    p99 = percentile(machine, 0.99)
    lowest = config.phases[0]
    low_p99 = percentile(lowest.legs()["machine"], 0.99)
    busiest = max(
        (reference.cpu.get(name, 0.0) / reference.window_s for name in services), default=0.0
    )
    lowest_busiest = max(
        (lowest.cpu.get(name, 0.0) / lowest.window_s for name in services), default=0.0
    )
    if math.isnan(low_p99) or low_p99 >= 1.0:
        lines.append(
            f"- **p99 < 1 s is not a matter of cores today**: the machine legs' p99 was "
            f"{_ms(low_p99)} ms already at {lowest.rate:g} leads/s, where the busiest process "
            f"was {100 * lowest_busiest:.0f} % of a core busy"
            + (
                f" (and {_ms(p99)} ms at {reference.rate:g} leads/s)"
                if reference is not lowest
                else ""
            )
            + ": with every process that far from busy, the latency is waiting, not the "
            "services' CPU (on a shared machine, for its other work: see the load average in "
            "the section's stamp); more replicas do not remove it, and the sizing above holds "
            "only once it is gone."
        )
    elif math.isnan(p99) or p99 >= 1.0:
        lines.append(
            f"- The machine legs' p99 was {_ms(low_p99)} ms at {lowest.rate:g} leads/s but "
            f"{_ms(p99)} ms at {reference.rate:g} leads/s (busiest process "
            f"{100 * busiest:.0f} % of a core; the machine {_busy(reference)} busy while the "
            "leads arrived): queueing for the machine's cores, shared by the services, "
            "PostgreSQL, Kafka, the mail servers and the harness; the cores and replicas above "
            f"(each at most {PROCESS_UTILISATION:.0%} busy) are meant to remove it."
        )
    else:
        lines.append(
            f"- The machine legs' p99 was {_ms(p99)} ms at {reference.rate:g} leads/s with the "
            f"busiest process {100 * busiest:.0f} % of a core: keeping every process at most "
            f"{PROCESS_UTILISATION:.0%} busy as above keeps the p99 under 1 s, if the CPU per "
            "lead stays flat as tables grow over 5 minutes (this run's windows are shorter)."
        )
    return "\n".join(lines)


def _cpu_goal(one: ConfigResult) -> str:
    """The CPU goal's row: every rate of the run, met only when each rate from 20 leads/s up
    (the rates the latency goals speak of) drained in every round at a median ≤ 25 ms per
    lead. Below, fixed costs per event and the operator's polls weigh on few leads: shown,
    not judged."""
    figures: list[str] = []
    judged: list[bool] = []
    for phase in sorted(one.phases, key=lambda phase: phase.rate):
        rounds = [phase, *(p for p in one.cpu_rounds if p.rate == phase.rate)]
        if not all(p.drained for p in rounds):
            figures.append(f"{phase.rate:g} leads/s did not drain in every round")
            if phase.rate >= CPU_GOAL_FROM_RATE:
                judged.append(False)
            continue
        cpus = [one.services_ms(p) for p in rounds]
        median = statistics.median(cpus)
        if len(cpus) > 1:
            each = " / ".join(f"{cpu:.1f}" for cpu in cpus)
            rounds_text = f"median of {len(cpus)} rounds: {each}"
            figures.append(f"{median:.1f} ms at {phase.rate:g} leads/s ({rounds_text})")
        else:
            figures.append(f"{median:.1f} ms at {phase.rate:g} leads/s")
        if phase.rate >= CPU_GOAL_FROM_RATE:
            judged.append(median <= CPU_GOAL_MS)
    lost = sum(p.lost + p.doubled for p in one.cpu_rounds)
    if lost:
        figures.append(f"{lost} leads lost or doubled in the extra rounds")
        judged.append(False)
    met = "yes" if judged and all(judged) else "no"
    return (
        f"| CPU per lead over all service processes ≤ {CPU_GOAL_MS:g} ms (above idle; judged "
        f"from {CPU_GOAL_FROM_RATE:g} leads/s up) | {', '.join(figures)} | {met} |"
    )


def _goals(configs: Sequence[ConfigResult]) -> str:
    one = next((c for c in configs if c.replicas == 1), configs[0])
    rows = ["| goal (issue 12) | this run | met |", "|---|---|:-:|"]
    rows.append(_cpu_goal(one))
    at20 = next((p for p in one.phases if p.rate == 20), None)
    if at20 is not None:
        p99 = percentile(at20.legs()["machine"], 0.99)
        rows.append(
            f"| machine legs p99 < 1 s at 20 leads/s | {_ms(p99)} ms | "
            f"{'yes' if p99 < 1 else 'no'} |"
        )
    if one.idle_s:
        idle = 100 * sum(one.idle_cpu.get(n, 0.0) for n in one.processes) / one.idle_s
        tx = sum(one.idle_xacts.values()) / one.idle_s
        rows.append(f"| idle ≤ 2 % of one core | {idle:.1f} % | {'yes' if idle <= 2 else 'no'} |")
        rows.append(f"| idle ≤ 5 transactions/s | {tx:.1f} /s | {'yes' if tx <= 5 else 'no'} |")
    if at20 is not None:
        answers = at20.legs()["first_answer"]
        p99 = percentile(answers, 0.99)
        rows.append(
            f"| (issue 13) first answer handed to SMTP p99 < 5 s at 20 leads/s | "
            f"{_ms(p99)} ms ({len(answers)} of {at20.accepted} leads) | "
            f"{'yes' if p99 < 5 and len(answers) == at20.accepted else 'no'} |"
        )
    if one.direct is not None:
        direct = one.direct
        p99 = percentile(direct.legs()["end_to_end"], 0.99)
        rows.append(
            f"| (issue 13) direct routing receipt → seller webhook p99 < 1 s at "
            f"{direct.rate:g} leads/s | {_ms(p99)} ms | {'yes' if p99 < 1 else 'no'} |"
        )
    two = next((c for c in configs if c.replicas == 2), None)
    if two is not None and two.phases:
        doubled = sum(p.doubled for p in two.phases)
        lost = sum(p.lost for p in two.phases)
        rows.append(
            f"| two replicas: no double effect, nothing lost | {doubled} doubled, {lost} lost | "
            f"{'yes' if doubled == 0 and lost == 0 else 'no'} |"
        )
        rows.append(
            f"| two replicas: the load split | {_split(two)} | "
            f"{'yes' if _split_ok(two) else 'no'} |"
        )
    return "\n".join(rows)


def _worker_cpu(config: ConfigResult) -> dict[str, list[float]]:
    by_service: dict[str, list[float]] = {}
    for name in config.processes:
        if " worker" in name:
            service = name.split()[0]
            cpu = sum(phase.cpu.get(name, 0.0) for phase in config.phases)
            by_service.setdefault(service, []).append(cpu)
    return by_service


def _split(config: ConfigResult) -> str:
    parts = []
    for service, cpus in _worker_cpu(config).items():
        total = sum(cpus) or math.nan
        parts.append(f"{service} " + "/".join(f"{100 * c / total:.0f}" for c in cpus) + " %")
    return "CPU share of the replicas: " + ", ".join(parts)


def _split_ok(config: ConfigResult) -> bool:
    """Each replica did at least a quarter of its service's worker CPU."""
    for cpus in _worker_cpu(config).values():
        total = sum(cpus)
        if len(cpus) > 1 and total > 0 and min(cpus) / total < 0.25:
            return False
    return True


def section(
    configs: Sequence[ConfigResult],
    *,
    durability: str,
    seconds: float,
    idle_seconds: float,
    drain_seconds: float,
    infra_names: tuple[str, ...],
    profiled: bool,
    warmup_leads: int,
) -> str:
    rates = ", ".join(f"{p.rate:g}" for p in max(configs, key=lambda c: len(c.phases)).phases)
    partitions = ", ".join(
        f"{c.partitions if c.partitions is not None else '?'} ({c.replicas} replica(s))"
        for c in configs
    )
    parts = [
        "## Pipeline: the whole system under open-loop load (PostgreSQL + Kafka)",
        f"`benchmarks/bench_pipeline.py`. {durability}; Kafka as started by `scripts/infra.sh` "
        f"(partitions of `vo.leads`: {partitions}). Open-loop leads at {rates} leads/s, "
        f"{seconds:.0f} s each, after {warmup_leads} warm-up leads; drain cutoff "
        f"{drain_seconds:.0f} s after the last POST; idle window {idle_seconds:.0f} s. "
        "Services log at INFO (JSON) to files, as in production.",
    ]
    if profiled:
        parts.append(
            "**Profiled run**: py-spy sampled the service processes during the 20 leads/s "
            "phase of one replica; those figures are perturbed."
        )
    parts.append(HOW_TO_READ)
    for config in configs:
        title = "One replica of each worker" if config.replicas == 1 else (
            f"{config.replicas} replicas of each worker"
        )  # fmt: skip
        parts += [
            f"### {title}",
            _latency_table(config),
            _leads_table(config),
            _cpu_table(config, infra_names),
            _idle_text(config),
        ]
        if config.replicas > 1:
            parts.append(_handled_table(config))
        if config.skipped:
            parts.append(
                f"Not run: {', '.join(config.skipped)} leads/s (the previous rate did not drain "
                f"within {drain_seconds:.0f} s; a higher rate would only measure its backlog)."
            )
        if config.direct is not None:
            parts.append(_direct_table(config))
        if config.direct_routing:
            parts.append(config.direct_routing)
    parts += ["### Goals of issue 12, this run", _goals(configs)]
    one = next((c for c in configs if c.replicas == 1), configs[0])
    parts += [
        f"### What {TARGET_RATE} leads/s sustained for {TARGET_MINUTES} minutes with p99 < 1 s "
        "needs",
        _capacity(one),
    ]
    profile = next((c.profile for c in configs if c.profile), None)
    if profile:
        parts += ["### Where the CPU goes (py-spy, 20 leads/s, one replica)", profile]
    return "\n\n".join(parts) + "\n"
