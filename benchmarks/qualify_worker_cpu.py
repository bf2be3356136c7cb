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

    .venv/bin/python -m benchmarks.qualify_worker_cpu [rounds] [gap_ms]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
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


async def measure(rounds: int, gap_s: float) -> tuple[float, float, float, float, float]:
    """(best, median) CPU seconds per lead, statements, transactions and statements compiled
    by SQLAlchemy per lead."""
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
                sender = MessageSender(
                    runtime.session_factory,
                    settings,
                    {"email": EmailChannel(smtp, composer), "sms": SmsChannel(provider)},
                    outbox=runtime.outbox,
                    clock=runtime.clock,
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
                try:
                    for _ in range(2):  # caches, the SMTP connection, prepared statements
                        async with session_scope(runtime.session_factory) as session:
                            await handler(session, _envelope(clock))
                        await sender.drain()
                    event.listen(engine, "before_cursor_execute", counted)
                    event.listen(engine, "begin", begun)
                    cpu: list[float] = []
                    for _ in range(rounds):
                        envelopes = [_envelope(clock) for _ in range(ROUND)]
                        start = time.process_time()
                        for envelope in envelopes:
                            async with session_scope(runtime.session_factory) as session:
                                await handler(session, envelope)
                            if gap_s:
                                await asyncio.sleep(gap_s)
                        await sender.drain()
                        cpu.append((time.process_time() - start) / ROUND)
                finally:
                    handoff.detach(sender)
                    await sender.drain()
                    await smtp.aclose()
                    await provider.aclose()
                leads = rounds * ROUND
                return (
                    min(cpu),
                    sorted(cpu)[len(cpu) // 2],
                    statements / leads,
                    transactions / leads,
                    compiled / leads,
                )
    finally:
        await drop_database(url)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    gap_ms = float(sys.argv[2]) if len(sys.argv) > 2 else 50.0
    best, median, statements, transactions, compiled = asyncio.run(measure(rounds, gap_ms / 1000))
    sys.stdout.write(
        f"{rounds} rounds of {ROUND} leads, {gap_ms:g} ms apart: CPU per lead best "
        f"{best * 1000:.2f} ms, median {median * 1000:.2f} ms; per lead {statements:.2f} "
        f"statements ({compiled:.2f} compiled by SQLAlchemy, the rest prepared), "
        f"{transactions:.2f} transactions, {statements + 2 * transactions:.2f} round trips\n"
    )


if __name__ == "__main__":
    main()
