"""A qualify sender in its own process that stops dead at a chosen point, for the "worker killed
mid-send" tests: ``python -m tests.qualify.crash_sender after_claim|after_send``.

Settings come from the environment (``QUALIFY_…``). The process claims the due messages, then:
- ``after_claim``: prints ``claimed <ids>`` and waits (the claim is committed, nothing sent);
- ``after_send``: hands each message over for real (SMTP DATA accepted, the provider's POST
  answered), prints ``sent <id>`` and waits before recording the answer.
The test SIGKILLs it there.
"""

from __future__ import annotations

import asyncio
import sys

from qualify.messages.channels import Channel, EmailChannel, HandOver, Job, SmsChannel
from qualify.messages.compose import Composer
from qualify.messages.sender import MessageSender
from qualify.models import infra
from qualify.policy import Policy
from qualify.settings import QualifySettings
from shared.db.engine import create_engine
from shared.db.session import make_session_factory
from shared.messaging.sms.ovh import OvhSmsProvider
from shared.messaging.smtp_sender import SmtpSender
from shared.outbox import Outbox, event_source


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class StopsAfterSending:
    """A channel that hands the message over, then never returns (the process dies here)."""

    def __init__(self, inner: Channel) -> None:
        self._inner = inner
        self.name = inner.name
        self.verifiable = inner.verifiable

    @property
    def configured(self) -> bool:
        return self._inner.configured

    async def send(self, job: Job, hand_over: HandOver) -> str | None:
        await self._inner.send(job, hand_over)
        say(f"sent {job.message_id}")
        await asyncio.Event().wait()
        return None  # pragma: no cover

    async def find_sent(self, job: Job) -> str | None:
        return await self._inner.find_sent(job)


async def main(point: str) -> None:
    settings = QualifySettings()
    engine = create_engine(settings.resolved_database_url())
    provider = OvhSmsProvider(settings)
    composer = Composer(settings, Policy.from_settings(settings))
    email: Channel = EmailChannel(SmtpSender(settings), composer)
    sms: Channel = SmsChannel(provider)
    if point == "after_send":
        email, sms = StopsAfterSending(email), StopsAfterSending(sms)
    sender = MessageSender(
        make_session_factory(engine),
        settings,
        {"email": email, "sms": sms},
        outbox=Outbox(infra.outbox_event, event_source("qualify")),
    )
    if point == "after_claim":
        jobs = await sender.claim()
        say("claimed " + " ".join(job.message_id for job in jobs))
        await asyncio.Event().wait()
    await sender.send_due()
    say("done")  # pragma: no cover: killed before


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
