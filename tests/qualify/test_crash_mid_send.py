"""A worker killed mid-send does not double a message (real processes, SIGKILL, PostgreSQL,
Postfix read back over IMAP, the local OVH API).

A sender runs in its own process (tests/qualify/crash_sender.py) and is SIGKILLed (1) after its
claim was committed, before anything was handed over, and (2) after the SMTP server and the SMS
provider accepted the messages, before it recorded their answers. Another sender then recovers
the expired claims: in (1) each message goes out once; in (2) the e-mail is not resent (it is
``unconfirmed``), the SMS is found at the provider by its tag (``sent``). Each prospect receives
exactly one e-mail and one SMS either way."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from qualify.messages.channels import EmailChannel, SmsChannel
from qualify.messages.sender import MessageSender
from qualify.models import OutgoingMessage
from qualify.settings import QualifySettings
from shared.clock import utcnow
from shared.db.session import session_scope
from shared.messaging.sms.ovh import OvhSmsProvider
from shared.messaging.smtp_sender import SmtpSender
from tests.qualify.conftest import QualifyApi, open_api, qualify_settings
from tests.support.clock import Clock
from tests.support.fake_ovh import FakeOvh, serve_fake_ovh
from tests.support.mail import DEALER, PROSPECT, imap_mailbox, require_smtp

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.imap]

ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 10.0


@dataclass
class Crash:
    api: QualifyApi
    ovh: FakeOvh
    settings: QualifySettings

    def environment(self) -> dict[str, str]:
        settings, ovh = self.settings, self.ovh
        values = {
            "DATABASE_URL": settings.resolved_database_url(),
            "BUS": "embedded",
            "EMBEDDED_BUS_PATH": str(settings.embedded_bus_path),
            "SMTP_HOST": str(settings.smtp_host),
            "SMTP_PORT": str(settings.smtp_port),
            "SMTP_TLS": "none",
            "MESSAGE_FROM_ADDRESS": DEALER,
            "MESSAGE_REPLY_MAILBOX": DEALER,
            "MESSAGE_SEND_LEASE_S": str(LEASE_S),
            "OVH_ENDPOINT": ovh.url,
            "OVH_APPLICATION_KEY": ovh.application_key,
            "OVH_APPLICATION_SECRET": ovh.application_secret,
            "OVH_CONSUMER_KEY": ovh.consumer_key,
            "OVH_SMS_SERVICE_NAME": ovh.service_name,
            "LOG_JSON": "true",
        }
        return {
            **{key: value for key, value in os.environ.items() if not key.startswith("QUALIFY_")},
            **{f"QUALIFY_{key}": value for key, value in values.items()},
            "PYTHONPATH": str(ROOT),
        }

    async def run_until(self, point: str, expected_lines: int) -> list[str]:
        """Start a sender process, wait until it reached ``point`` (its lines), SIGKILL it."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.qualify.crash_sender",
            point,
            cwd=ROOT,
            env=self.environment(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert process.stdout is not None
        lines: list[str] = []
        try:
            while len(lines) < expected_lines:
                line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
                assert line, "the sender process ended before reaching the point"
                lines.append(line.decode().strip())
        finally:
            process.send_signal(signal.SIGKILL)
            await process.wait()
        assert process.returncode == -signal.SIGKILL
        return lines

    def recovering_sender(self, provider: OvhSmsProvider) -> MessageSender:
        later = utcnow() + timedelta(seconds=LEASE_S * 3)  # the dead claims' leases ran out
        return MessageSender(
            self.api.runtime.session_factory,
            self.settings,
            {
                "email": EmailChannel(SmtpSender(self.settings), self.api.composer),
                "sms": SmsChannel(provider),
            },
            outbox=self.api.runtime.outbox,
            clock=lambda: later,
        )

    async def messages(self, lead_id: str) -> dict[str, OutgoingMessage]:
        async with session_scope(self.api.runtime.session_factory) as session:
            rows = (
                await session.scalars(
                    select(OutgoingMessage).where(OutgoingMessage.lead_id == lead_id)
                )
            ).all()
        return {row.channel: row for row in rows}


@pytest.fixture
async def crash(postgres_url: str, tmp_path: Path) -> AsyncIterator[Crash]:
    smtp = require_smtp()
    async with serve_fake_ovh() as ovh:
        settings = qualify_settings(
            postgres_url,
            tmp_path,
            smtp_host=smtp.smtp_host,
            smtp_port=smtp.smtp_port,
            smtp_tls="none",
            message_from_address=DEALER,
            message_reply_mailbox=DEALER,
            message_send_lease_s=LEASE_S,
            **ovh.settings().model_dump(),
        )
        # Real time: the sender processes claim with their own clock.
        async with open_api(settings, Clock(utcnow())) as api:
            yield Crash(api, ovh, settings)


async def copies(message_id: str) -> int:
    await asyncio.sleep(1.5)  # what Postfix accepted is in the mailbox well within this
    async with imap_mailbox(PROSPECT) as box:
        return len(await box.search(f'HEADER Message-ID "{message_id}"'))


async def test_killed_after_the_claim_before_any_hand_over(crash: Crash) -> None:
    lead = await crash.api.add_lead(email=PROSPECT, first_answer=True)
    lines = await crash.run_until("after_claim", 1)
    rows = await crash.messages(lead)
    assert lines[0].split()[0] == "claimed"
    assert set(lines[0].split()[1:]) == {row.id for row in rows.values()}
    assert {row.status for row in rows.values()} == {"sending"}
    assert {row.handed_over_at for row in rows.values()} == {None}

    provider = OvhSmsProvider(crash.settings)
    try:
        assert await crash.recovering_sender(provider).send_due() == 2  # requeued, then sent
    finally:
        await provider.aclose()
    rows = await crash.messages(lead)
    assert {row.status for row in rows.values()} == {"sent"}
    assert {row.attempts for row in rows.values()} == {2}
    assert len(crash.ovh.jobs) == 1
    assert await copies(str(rows["email"].message_id_header)) == 1


async def test_killed_after_the_hand_over_before_recording_it(crash: Crash) -> None:
    lead = await crash.api.add_lead(email=PROSPECT, first_answer=True)
    lines = await crash.run_until("after_send", 2)
    assert sorted(line.split()[0] for line in lines) == ["sent", "sent"]
    rows = await crash.messages(lead)
    assert {row.status for row in rows.values()} == {"sending"}
    assert None not in {row.handed_over_at for row in rows.values()}
    assert len(crash.ovh.jobs) == 1  # the SMS left
    assert await copies(str(rows["email"].message_id_header)) == 1  # so did the e-mail

    provider = OvhSmsProvider(crash.settings)
    try:
        assert await crash.recovering_sender(provider).send_due() == 0
    finally:
        await provider.aclose()
    rows = await crash.messages(lead)
    assert (rows["email"].status, rows["email"].reason) == ("unconfirmed", "crashed_mid_send")
    assert rows["sms"].status == "sent"
    assert rows["sms"].provider_message_id == str(crash.ovh.jobs[0]["ids"][0])
    assert len(crash.ovh.jobs) == 1
    assert await copies(str(rows["email"].message_id_header)) == 1
