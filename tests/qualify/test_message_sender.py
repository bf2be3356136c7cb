"""The sender on real parts: e-mail through Postfix read back over IMAP (scripts/smtp.sh), SMS
through a local OVHcloud API (tests/support/fake_ovh.py), delivery receipts pushed and polled,
retries with backoff, permanent failures, expiry, and the recovery of claims whose sender died:
before the hand-over they are sent again, after it an SMS is looked up by its tag and an e-mail
is never resent (``unconfirmed``)."""

from __future__ import annotations

import asyncio
import dataclasses
import email
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from qualify.messages.channels import EmailChannel, SmsChannel
from qualify.messages.compose import Composer
from qualify.messages.first_answer import schedule_first_answer
from qualify.messages.handoff import SenderHandoff
from qualify.messages.loops import sender_wakeup
from qualify.messages.receipts import ReceiptPoller
from qualify.messages.sender import MessageSender
from qualify.models import OutgoingMessage, QueuedLead
from qualify.settings import QualifySettings
from qualify.suppression.repository import SuppressionRepository
from qualify.suppression.service import address_hash
from shared.db.session import session_scope
from shared.messaging.lead_tokens import LeadTokens
from shared.messaging.sms.ovh import OvhSmsProvider
from shared.messaging.sms.provider import OutgoingSms
from shared.messaging.smtp_sender import SmtpSender
from tests.qualify.conftest import QualifyApi, open_api, qualify_settings
from tests.qualify.test_api import outbox
from tests.support.clock import Clock
from tests.support.fake_ovh import FakeOvh, serve_fake_ovh
from tests.support.http_server import serve
from tests.support.mail import DEALER, PROSPECT, imap_mailbox, require_smtp
from tests.support.ports import free_port

pytestmark = [pytest.mark.smtp, pytest.mark.imap]

SECRET = "receipt-secret-123"
MOBILE = "+33612345678"
KEY = b"dev-only-privacy-key"


@dataclass
class Parts:
    api: QualifyApi
    ovh: FakeOvh
    settings: QualifySettings
    providers: list[OvhSmsProvider]

    def sender(self, **overrides: Any) -> MessageSender:
        settings = self.settings.model_copy(update=overrides)
        provider = OvhSmsProvider(settings)
        self.providers.append(provider)
        composer = Composer(settings, self.api.policy)
        return MessageSender(
            self.api.runtime.session_factory,
            settings,
            {"email": EmailChannel(SmtpSender(settings), composer), "sms": SmsChannel(provider)},
            outbox=self.api.runtime.outbox,
            clock=self.api.clock,
        )

    async def messages(self, lead_id: str) -> dict[str, OutgoingMessage]:
        async with session_scope(self.api.runtime.session_factory) as session:
            rows = (
                await session.scalars(
                    select(OutgoingMessage).where(OutgoingMessage.lead_id == lead_id)
                )
            ).all()
        return {row.channel: row for row in rows}

    async def set(self, message_id: str, **values: Any) -> None:
        async with session_scope(self.api.runtime.session_factory) as session:
            await session.execute(
                update(OutgoingMessage).where(OutgoingMessage.id == message_id).values(**values)
            )


@pytest.fixture
async def parts(tmp_path: Path, clock: Clock) -> AsyncIterator[Parts]:
    smtp = require_smtp()
    async with serve_fake_ovh() as ovh:
        settings = qualify_settings(
            f"sqlite+aiosqlite:///{tmp_path / 'qualify.db'}",
            tmp_path,
            smtp_host=smtp.smtp_host,
            smtp_port=smtp.smtp_port,
            smtp_tls="none",
            message_dealer_name="Garage Dupont",
            message_from_address=DEALER,
            message_reply_mailbox=DEALER,
            message_public_base_url="https://leads.vo-leads.test",
            message_sms_receipt_secret=SECRET,
            **ovh.settings().model_dump(),
        )
        async with open_api(settings, clock) as api:
            found = Parts(api, ovh, settings, [])
            try:
                yield found
            finally:
                for provider in found.providers:
                    await provider.aclose()


async def mailbox_copies(message_id: str, *, settle_s: float = 1.5) -> int:
    await asyncio.sleep(settle_s)  # what Postfix accepted is in the mailbox well within this
    async with imap_mailbox(PROSPECT) as box:
        return len(await box.search(f'HEADER Message-ID "{message_id}"'))


async def test_first_answer_goes_out_by_email_and_sms(parts: Parts) -> None:
    api = parts.api
    lead = await api.add_lead(email=PROSPECT, first_name="Hélène", first_answer=True)
    sender = parts.sender()
    assert await sender.send_due() == 2
    assert await sender.send_due() == 0  # nothing left, nothing doubled

    rows = await parts.messages(lead)
    mail, sms = rows["email"], rows["sms"]
    assert (mail.status, sms.status) == ("sent", "sent")
    assert mail.provider_message_id
    assert sms.provider_message_id
    assert mail.sent_at == api.clock.now
    assert mail.attempts == 1
    assert mail.waiting_reason is None

    async with imap_mailbox(PROSPECT) as box:
        received = await box.wait_for("Message-ID", str(mail.message_id_header))
    parsed = email.message_from_bytes(received.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    tokens = LeadTokens("dev-only-lead-token-key")
    assert tokens.lead_of_address(str(parsed["Reply-To"])) == lead
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"https://leads.vo-leads.test/v1/unsubscribe/{tokens.token(lead)}" in str(
        parsed["List-Unsubscribe"]
    )
    assert str(parsed["From"]) == f"Garage Dupont <{DEALER}>"
    plain, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert plain is not None
    assert html is not None
    assert "Bonjour Hélène," in plain.get_content()
    assert "Bonjour Hélène," in html.get_content()
    # The Return-Path is the lead's plus-address: a bounce comes back to the lead.
    assert tokens.lead_of_address(str(parsed["Return-Path"])) == lead

    job = parts.ovh.jobs[-1]
    assert job["receivers"] == [MOBILE]
    assert job["tag"] == sms.id
    assert job["message"] == sms.text
    assert job["noStopClause"] is True
    assert str(job["ids"][0]) == sms.provider_message_id

    events = [(kind, data) for kind, data in await outbox(api, lead)]
    sent = [data for kind, data in events if kind == "lead.message-sent.v1"]
    assert {data["channel"] for data in sent} == {"email", "sms"}
    assert all(data["kind"] == "first_answer" and data["operator_id"] is None for data in sent)
    assert "Hélène" not in str(events)
    assert PROSPECT not in str(events)


async def test_a_first_answer_claimed_at_birth_goes_out_once_after_its_commit(
    parts: Parts,
) -> None:
    # The worker's path: its running sender claims the first answer in the lead's transaction
    # and sends it once that committed, without a pass of its own (no wake-up, no claim).
    api = parts.api
    sender = parts.sender()
    handoff = SenderHandoff()
    handoff.attach(sender)
    wakeup = sender_wakeup(api.runtime)
    seen = wakeup.generation
    lead = await api.add_lead(email=PROSPECT, first_answer=True, handoff=handoff)
    await sender.drain()
    assert wakeup.generation == seen

    rows = await parts.messages(lead)
    assert {row.status for row in rows.values()} == {"sent"}
    assert {row.attempts for row in rows.values()} == {1}
    assert all(row.claim_token and row.lease_expires_at is None for row in rows.values())
    assert await sender.send_due() == 0  # nothing left, nothing doubled
    api.clock.advance(seconds=121)
    assert await parts.sender().send_due() == 0  # no claim left to recover either
    assert len(parts.ovh.jobs) == 1
    assert await mailbox_copies(str(rows["email"].message_id_header)) == 1
    sent = [kind for kind, _ in await outbox(api, lead) if kind == "lead.message-sent.v1"]
    assert len(sent) == 2


async def _first_answer_of(
    parts: Parts, lead_id: str, handoff: SenderHandoff, *, then: Any = None
) -> None:
    async with session_scope(parts.api.runtime.session_factory) as session:
        lead = await session.get(QueuedLead, lead_id)
        assert lead is not None
        await schedule_first_answer(
            session, parts.api.composer, lead, now=parts.api.clock.now, handoff=handoff
        )
        if then is not None:
            then()


async def test_a_first_answer_claimed_at_birth_is_never_sent_when_its_transaction_fails(
    parts: Parts,
) -> None:
    sender = parts.sender()
    handoff = SenderHandoff()
    handoff.attach(sender)
    lead = await parts.api.add_lead(email=PROSPECT)

    def fail() -> None:
        raise RuntimeError("the lead's transaction fails after the first answer")

    with pytest.raises(RuntimeError):
        await _first_answer_of(parts, lead, handoff, then=fail)
    await sender.drain()
    assert await parts.messages(lead) == {}
    assert parts.ovh.jobs == []


async def test_a_first_answer_claimed_at_birth_whose_worker_died_is_recovered_and_sent_once(
    parts: Parts,
) -> None:
    api = parts.api
    dead = parts.sender()
    handoff = SenderHandoff()
    handoff.attach(dead)
    lead = await api.add_lead(email=PROSPECT)
    # Committed claimed, then the process dies before its sender starts anything.
    await _first_answer_of(parts, lead, handoff, then=lambda: handoff.detach(dead))
    await dead.drain()
    rows = await parts.messages(lead)
    assert {row.status for row in rows.values()} == {"sending"}
    assert parts.ovh.jobs == []
    assert await parts.sender().send_due() == 0  # the lease still holds
    api.clock.advance(seconds=121)
    assert await parts.sender().send_due() == 2  # recovered (queued again), then sent
    rows = await parts.messages(lead)
    assert {row.status for row in rows.values()} == {"sent"}
    assert {row.attempts for row in rows.values()} == {2}
    assert len(parts.ovh.jobs) == 1
    assert await mailbox_copies(str(rows["email"].message_id_header)) == 1


async def test_sms_delivery_receipts_pushed_and_polled(parts: Parts) -> None:
    api = parts.api
    first = await api.add_lead(email=None, first_answer=True)
    second = await api.add_lead(email=None, phone="+33612345679", first_answer=True)
    third = await api.add_lead(email=None, phone="+33612345670", first_answer=True)
    assert await parts.sender().send_due() == 3
    ids = {
        lead: (await parts.messages(lead))["sms"].provider_message_id
        for lead in (first, second, third)
    }

    app = api.transport.app
    async with serve(app) as base:
        provider = OvhSmsProvider(parts.settings)
        parts.providers.append(provider)
        await provider.set_delivery_callback(f"{base}/v1/sms/delivery-receipts/{SECRET}")
        assert (await parts.ovh.deliver(str(ids[first]), dlr=1)).status_code == 200
        assert (await parts.ovh.deliver(str(ids[second]), dlr=16)).status_code == 200
        parts.ovh.account["callBack"] = f"{base}/v1/sms/delivery-receipts/wrong-secret"
        assert (await parts.ovh.deliver(str(ids[third]), dlr=1)).status_code == 404
    assert (await parts.messages(first))["sms"].status == "delivered"
    assert (await parts.messages(second))["sms"].status == "failed"
    assert (await parts.messages(second))["sms"].reason == "not_delivered"
    assert (await parts.messages(third))["sms"].status == "sent"  # the forged call did nothing

    # The third's receipt is asked for (once it is a minute old).
    poller = ReceiptPoller(
        api.runtime.session_factory,
        parts.providers[-1],
        outbox=api.runtime.outbox,
        interval=timedelta(minutes=5),
    )
    assert await poller.poll_once(api.clock.now) == 0  # too fresh
    assert await poller.poll_once(api.clock.advance(minutes=2)) == 1
    assert (await parts.messages(third))["sms"].status == "delivered"
    statuses = [
        data["status"]
        for kind, data in await outbox(api, first)
        if kind == "lead.message-status-changed.v1"
    ]
    assert statuses == ["delivered"]


async def test_transient_failures_retry_with_backoff_then_send(parts: Parts) -> None:
    api = parts.api
    lead = await api.add_lead(email=PROSPECT, first_answer=True)
    parts.ovh.failures = [503]
    down = parts.sender(smtp_port=free_port())  # nothing listens there
    assert await down.send_due() == 2
    rows = await parts.messages(lead)
    for row in rows.values():
        assert row.status == "queued"
        assert row.attempts == 1
        assert api.clock.now + timedelta(seconds=13) <= row.next_attempt_at
        assert row.next_attempt_at <= api.clock.now + timedelta(seconds=17)
    assert rows["email"].last_error == "SMTP connection failed (SMTPConnectError)"
    assert rows["sms"].last_error == "OVH API unavailable (503)"
    assert await down.send_due() == 0  # not due yet
    api.clock.advance(seconds=20)
    assert await parts.sender().send_due() == 2
    rows = await parts.messages(lead)
    assert {row.status for row in rows.values()} == {"sent"}
    assert {row.attempts for row in rows.values()} == {2}
    assert len(parts.ovh.jobs) == 1
    assert await mailbox_copies(str(rows["email"].message_id_header)) == 1


async def test_permanent_failures_and_giving_up(parts: Parts) -> None:
    api = parts.api
    lead = await api.add_lead(email=PROSPECT, first_answer=True)
    rows = await parts.messages(lead)
    await parts.set(rows["email"].id, to_address="x@-bad-.test")
    parts.ovh.invalid_numbers = {MOBILE}
    assert await parts.sender().send_due() == 2
    rows = await parts.messages(lead)
    assert (rows["email"].status, rows["email"].reason) == ("failed", "permanent_error")
    assert rows["email"].last_error == "SMTP RCPT refused: 501 5.1.3"
    assert (rows["sms"].status, rows["sms"].last_error) == (
        "failed",
        "OVH refused the SMS: invalid receiver",
    )
    failed = [
        data for kind, data in await outbox(api, lead) if kind == "lead.message-status-changed.v1"
    ]
    assert {(data["channel"], data["status"]) for data in failed} == {
        ("email", "failed"),
        ("sms", "failed"),
    }

    other = await api.add_lead(email=None, phone="+33612345671", first_answer=True)
    parts.ovh.failures = [503, 503]
    stubborn = parts.sender(message_max_attempts=2)
    assert await stubborn.send_due() == 1
    api.clock.advance(minutes=1)
    assert await stubborn.send_due() == 1
    row = (await parts.messages(other))["sms"]
    assert (row.status, row.reason, row.attempts) == ("failed", "gave_up", 2)


async def test_expired_and_blocked_messages_are_cancelled(parts: Parts) -> None:
    api = parts.api
    stale = await api.add_lead(email=PROSPECT, phone=None, first_answer=True)
    api.clock.advance(minutes=121)  # a first answer is valid 120 minutes
    blocked = await api.add_lead(email=None, phone="+33612345672", first_answer=True)
    async with session_scope(api.runtime.session_factory) as session:
        await SuppressionRepository.from_session(session).block(
            [address_hash("+33612345672", KEY)], channel="sms", reason="stop", at=api.clock.now
        )
    assert await parts.sender().send_due() == 0
    stale_row = (await parts.messages(stale))["email"]
    assert (stale_row.status, stale_row.reason) == ("cancelled", "expired")
    blocked_row = (await parts.messages(blocked))["sms"]
    assert (blocked_row.status, blocked_row.reason) == ("cancelled", "opted_out")
    assert parts.ovh.jobs == []


async def test_without_smtp_emails_wait_and_say_why(parts: Parts) -> None:
    api = parts.api
    lead = await api.add_lead(email=PROSPECT, first_answer=True)
    unconfigured = parts.sender(smtp_host=None)
    assert await unconfigured.send_due() == 1  # the SMS only
    rows = await parts.messages(lead)
    assert rows["email"].status == "queued"
    assert rows["email"].attempts == 0
    assert rows["sms"].status == "sent"
    assert await parts.sender().send_due() == 1  # SMTP configured again: it leaves


async def test_a_claim_that_expired_before_the_hand_over_is_sent_once(parts: Parts) -> None:
    api = parts.api
    lead = await api.add_lead(email=PROSPECT, first_answer=True)
    dead = parts.sender()
    jobs = await dead.claim()  # ... and the worker dies before handing anything over
    assert len(jobs) == 2
    rows = await parts.messages(lead)
    assert {row.status for row in rows.values()} == {"sending"}
    assert await parts.sender().send_due() == 0  # the lease still holds
    api.clock.advance(seconds=121)
    assert await parts.sender().send_due() == 2  # recovered (queued again), then sent
    rows = await parts.messages(lead)
    assert {row.status for row in rows.values()} == {"sent"}
    assert len(parts.ovh.jobs) == 1
    assert await mailbox_copies(str(rows["email"].message_id_header)) == 1
    # The dead worker's claim tokens are void: were it only stalled, it could not hand over.
    late = jobs[0]
    await dead.send(late)
    assert len(parts.ovh.jobs) == 1
    assert await mailbox_copies(str(rows["email"].message_id_header), settle_s=0.5) == 1


async def test_after_the_hand_over_an_email_is_never_resent_and_an_sms_is_looked_up(
    parts: Parts,
) -> None:
    api = parts.api
    lead = await api.add_lead(email=PROSPECT, first_answer=True)
    jobs = {job.channel: job for job in await parts.sender().claim()}
    # The worker handed both over, the SMS reached the provider, then it died before recording.
    for job in jobs.values():
        await parts.set(job.message_id, handed_over_at=api.clock.now)
    provider = OvhSmsProvider(parts.settings)
    parts.providers.append(provider)
    sent = await provider.send(OutgoingSms(MOBILE, jobs["sms"].text, tag=jobs["sms"].message_id))
    api.clock.advance(seconds=121)
    assert await parts.sender().send_due() == 0
    rows = await parts.messages(lead)
    assert (rows["email"].status, rows["email"].reason) == ("unconfirmed", "crashed_mid_send")
    assert (rows["sms"].status, rows["sms"].provider_message_id) == (
        "sent",
        sent.provider_message_id,
    )
    assert len(parts.ovh.jobs) == 1
    assert await mailbox_copies(str(rows["email"].message_id_header)) == 0
    events = [(kind, data) for kind, data in await outbox(api, lead)]
    assert ("lead.message-status-changed.v1", "unconfirmed") in {
        (kind, data.get("status")) for kind, data in events
    }
    # A bounce may still come for an unconfirmed e-mail; a receipt for the SMS.

    # Handed over but never posted: not found at the provider, so sent (once) after all.
    other = await api.add_lead(email=None, phone="+33612345673", first_answer=True)
    (job,) = await parts.sender().claim()
    await parts.set(job.message_id, handed_over_at=api.clock.now)
    api.clock.advance(seconds=121)
    assert await parts.sender().send_due() == 1  # looked up (absent), queued, sent
    assert (await parts.messages(other))["sms"].status == "sent"
    assert [job_["tag"] for job_ in parts.ovh.jobs].count(job.message_id) == 1


async def test_a_send_that_starts_too_late_in_its_lease_hands_nothing_over(parts: Parts) -> None:
    api = parts.api
    lead = await api.add_lead(email=PROSPECT, first_answer=True)
    sender = parts.sender()
    for job in await sender.claim():
        await sender.send(dataclasses.replace(job, deadline=0.0))  # waited past half its lease
    rows = await parts.messages(lead)
    assert {(row.status, row.last_error) for row in rows.values()} == {("queued", "send timeout")}
    assert {row.handed_over_at for row in rows.values()} == {None}
    assert parts.ovh.jobs == []
    assert await mailbox_copies(str(rows["email"].message_id_header)) == 0


async def test_an_sms_lost_at_each_hand_over_is_given_up_after_its_attempts(parts: Parts) -> None:
    api = parts.api
    lead = await api.add_lead(email=None, first_answer=True)
    sender = parts.sender(message_max_attempts=1)
    (job,) = await sender.claim()
    await parts.set(job.message_id, handed_over_at=api.clock.now)  # no answer ever came back
    api.clock.advance(seconds=121)
    assert await sender.send_due() == 0
    row = (await parts.messages(lead))["sms"]
    assert (row.status, row.reason) == ("failed", "gave_up")
    assert parts.ovh.jobs == []
