"""CPU per lead of qualify's worker for a new lead, in process on PostgreSQL: the
``lead.received.v1`` handler with its first answer (one transaction per lead, as a polled batch
of one is), then the e-mail claimed at birth sent by the worker's sender through the local
Postfix (``127.0.0.1:$TEST_SMTP_PORT``, on a kept connection; the prospect is on its discard
domain, as in ``bench_pipeline``) and its outcome recorded; no SMS provider, as in the bench.
Leads leave ``gap`` ms apart (the bench's 20 leads/s: 50 ms), so that the sends overlap as
they do there; a round of 20 leads ends when every send is recorded. Reported: the CPU time
(``time.process_time``) per lead of the rounds (best, median), and the statements, transactions
and round trips per lead (a transaction is a BEGIN and a COMMIT round trip more; a write in
autocommit is one), and how many of them SQLAlchemy compiled for their execution: on
PostgreSQL none since the worker's writes are ``shared.db.prepared`` driver SQL (before: all
four). The consumer's claim of the event (``shared.consumer``) and the outbox
relay's publishing are not in it.

Given another tree's code (``--baseline DIR``: a copy of ``shared/`` and ``services/qualify/``,
migrations included, e.g. main's), each version runs in its own process (``--serve``: one round
per line read, its figures written back; the benchmark and the test support are this tree's)
and they take turns round by round, the first one alternating, so that both see the machine's
same minutes; then each round's ratio of the two, and the ratios' median and range. The
machine's noise is large at this size (a round is ~0.1 s of CPU): take 30 rounds or more.

    .venv/bin/python -m benchmarks.qualify_worker_cpu [rounds] [gap_ms] [--baseline DIR]
    rm -rf /tmp/main_tree && mkdir /tmp/main_tree  # e.g. main's
    git archive main shared services/qualify | tar -x -C /tmp/main_tree
"""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event

from qualify.messages.channels import EmailChannel, SmsChannel, sms_provider
from qualify.messages.compose import Composer
from qualify.messages.handoff import SenderHandoff
from qualify.messages.loops import FirstAnswerStep
from qualify.messages.sender import MessageSender
from qualify.queue.handlers import lead_received_handler
from shared.db.session import session_scope
from shared.events import Envelope
from shared.events.payloads import ContactV1, LeadReceivedV1, VehicleV1
from shared.messaging.smtp_sender import SmtpSender
from tests.qualify.conftest import open_api, qualify_settings
from tests.support.clock import Clock
from tests.support.infra import create_database, drop_database
from tests.support.mail import SMTP_HOST, SMTP_PORT

ROUND = 20
ROOT = Path(__file__).resolve().parent.parent
PROSPECT_DOMAIN = "discard.example.fr"  # Postfix takes and drops (scripts/smtp.sh)


def _envelope(clock: Clock) -> Envelope:
    lead_id = str(uuid.uuid4())
    event = LeadReceivedV1(
        lead_id=lead_id,
        kind="enquiry",
        source="leboncoin",
        source_ref=f"ref-{lead_id}",
        received_at=clock.now,
        contact=ContactV1(
            first_name="Camille",
            full_name="Camille Durand",
            phone=f"+3361{uuid.uuid4().int % 10**7:07d}",
            email=f"p-{lead_id[:8]}@{PROSPECT_DOMAIN}",
        ),
        vehicle=VehicleV1(ad_ref="AD-1", make="Peugeot", model="208"),
    )
    return Envelope(
        source="/vo-leads/ingest",
        type="lead.received.v1",
        subject=lead_id,
        data=event.model_dump(mode="json"),
    )


@dataclass(frozen=True)
class Round:
    """One round's figures, per lead."""

    cpu: float  # seconds
    statements: float
    transactions: float
    compiled: float  # statements compiled by SQLAlchemy

    def line(self) -> str:
        return f"{self.cpu!r} {self.statements!r} {self.transactions!r} {self.compiled!r}"

    @classmethod
    def parse(cls, line: str) -> Round:
        cpu, statements, transactions, compiled = (float(item) for item in line.split())
        return cls(cpu, statements, transactions, compiled)


async def measure(gap_s: float, next_round: Callable[[list[Round]], bool]) -> list[Round]:
    """The rounds, each one begun when ``next_round`` (given the rounds so far) says so."""
    url = (await create_database()).replace("postgresql://", "postgresql+asyncpg://")
    clock = Clock()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = qualify_settings(
                url,
                Path(tmp),
                smtp_host=SMTP_HOST,
                smtp_port=SMTP_PORT,
                smtp_tls="none",
                message_dealer_name="Garage Dupont",
            )
            async with open_api(settings, clock) as api:
                runtime = api.runtime
                composer = Composer(settings, api.policy)
                smtp = SmtpSender(settings, reuse_connections=True)
                provider = sms_provider(settings)
                # As the worker's sender loop builds it (a baseline's may not know every option).
                options: dict[str, Any] = {}
                if "hold_connections" in inspect.signature(MessageSender).parameters:
                    options["hold_connections"] = True
                sender = MessageSender(
                    runtime.session_factory,
                    settings,
                    {"email": EmailChannel(smtp, composer), "sms": SmsChannel(provider)},
                    outbox=runtime.outbox,
                    clock=runtime.clock,
                    **options,
                )
                handoff = SenderHandoff()
                handoff.attach(sender)
                handler = lead_received_handler(
                    api.policy, runtime.clock, runtime.outbox, FirstAnswerStep(composer, handoff)
                )
                statements = 0
                transactions = 0
                compiled = 0

                def counted(*args: Any) -> None:
                    # (connection, cursor, statement, parameters, context, executemany)
                    nonlocal statements, compiled
                    statements += 1
                    compiled += args[4].compiled is not None

                def begun(connection: Connection) -> None:
                    nonlocal transactions
                    if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
                        transactions += 1

                engine = runtime.engine.sync_engine
                rounds: list[Round] = []
                try:
                    for _ in range(2):  # caches, the SMTP connection, prepared statements
                        async with session_scope(runtime.session_factory) as session:
                            await handler(session, _envelope(clock))
                        await sender.drain()
                    event.listen(engine, "before_cursor_execute", counted)
                    event.listen(engine, "begin", begun)
                    while next_round(rounds):
                        statements = transactions = compiled = 0
                        envelopes = [_envelope(clock) for _ in range(ROUND)]
                        start = time.process_time()
                        for envelope in envelopes:
                            async with session_scope(runtime.session_factory) as session:
                                await handler(session, envelope)
                            if gap_s:
                                await asyncio.sleep(gap_s)
                        await sender.drain()
                        cpu = time.process_time() - start
                        rounds.append(
                            Round(
                                cpu / ROUND,
                                statements / ROUND,
                                transactions / ROUND,
                                compiled / ROUND,
                            )
                        )
                finally:
                    handoff.detach(sender)
                    await sender.drain()
                    if hasattr(sender, "aclose"):
                        await sender.aclose()
                    await smtp.aclose()
                    await provider.aclose()
                return rounds
    finally:
        await drop_database(url)


def serve(gap_s: float) -> None:
    """``--serve``: a round per line read on stdin, its figures written on stdout (the logs go
    to stderr); the end at end of input."""

    def next_round(rounds: list[Round]) -> bool:
        if rounds:
            sys.stdout.write(rounds[-1].line() + "\n")
            sys.stdout.flush()
        return sys.stdin.readline().strip() == "round"

    asyncio.run(measure(gap_s, next_round))


_BOOTSTRAP = (
    "import runpy, sys; sys.path[:0] = sys.argv[1:3]; del sys.argv[1:3]; "
    "runpy.run_module('benchmarks.qualify_worker_cpu', run_name='__main__')"
)


def _serving(gap_ms: float, tree: Path | None) -> subprocess.Popen[str]:
    """This tree's version, or ``tree``'s (its ``shared`` and ``qualify`` first on the path:
    the benchmark and the test support stay this tree's)."""
    serve_args = ["--serve", str(gap_ms)]
    if tree is None:
        args = [sys.executable, "-m", "benchmarks.qualify_worker_cpu", *serve_args]
    else:
        paths = [str(tree.resolve()), str((tree / "services" / "qualify").resolve())]
        args = [sys.executable, "-c", _BOOTSTRAP, *paths, *serve_args]
        if not (tree / "services/qualify/qualify/messages/sender.py").is_file():
            raise SystemExit(f"{tree}: no services/qualify/qualify there")
    return subprocess.Popen(
        args,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def compare(rounds: int, gap_ms: float, baseline: Path) -> dict[str, list[Round]]:
    """The two versions' rounds, taken in turns (the first one alternating)."""
    processes = {"baseline": _serving(gap_ms, baseline), "current": _serving(gap_ms, None)}
    results: dict[str, list[Round]] = {name: [] for name in processes}
    try:
        for index in range(rounds):
            order = list(processes) if index % 2 == 0 else list(reversed(processes))
            for name in order:
                process = processes[name]
                assert process.stdin is not None
                assert process.stdout is not None
                process.stdin.write("round\n")
                process.stdin.flush()
                line = process.stdout.readline()
                if not line:
                    raise SystemExit(f"the {name} version stopped (run it alone to see why)")
                results[name].append(Round.parse(line))
    finally:
        for process in processes.values():
            assert process.stdin is not None
            process.stdin.close()
        for process in processes.values():
            process.wait(timeout=60)
    return results


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    return (
        f"median {ordered[len(ordered) // 2] * 1000:.2f} ms "
        f"(range {ordered[0] * 1000:.2f}-{ordered[-1] * 1000:.2f})"
    )


def _counts(rounds: list[Round]) -> str:
    statements = sum(item.statements for item in rounds) / len(rounds)
    transactions = sum(item.transactions for item in rounds) / len(rounds)
    compiled = sum(item.compiled for item in rounds) / len(rounds)
    return (
        f"per lead {statements:.2f} statements ({compiled:.2f} compiled by SQLAlchemy, the rest "
        f"prepared), {transactions:.2f} transactions, {statements + 2 * transactions:.2f} "
        "round trips"
    )


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--serve"]:
        serve(float(args[1]) / 1000)
        return
    baseline = None
    if "--baseline" in args:
        at = args.index("--baseline")
        baseline = Path(args[at + 1])
        del args[at : at + 2]
    rounds = int(args[0]) if args else 10
    gap_ms = float(args[1]) if len(args) > 1 else 50.0
    head = f"{rounds} rounds of {ROUND} leads, {gap_ms:g} ms apart"
    if baseline is None:
        done = asyncio.run(measure(gap_ms / 1000, lambda so_far: len(so_far) < rounds))
        sys.stdout.write(
            f"{head}: CPU per lead {_ms([item.cpu for item in done])}; {_counts(done)}\n"
        )
        return
    results = compare(rounds, gap_ms, baseline)
    sys.stdout.write(f"{head}, the two versions in turns:\n")
    for name, done in results.items():
        sys.stdout.write(
            f"{name}: CPU per lead {_ms([item.cpu for item in done])}; {_counts(done)}\n"
        )
    ratios = [
        current.cpu / base.cpu
        for base, current in zip(results["baseline"], results["current"], strict=True)
    ]
    ordered = sorted(ratios)
    sys.stdout.write(
        f"current/baseline per round: median {ordered[len(ordered) // 2]:.3f} "
        f"(range {ordered[0]:.3f}-{ordered[-1]:.3f}): "
        + " ".join(f"{ratio:.3f}" for ratio in ratios)
        + "\n"
    )


if __name__ == "__main__":
    main()
