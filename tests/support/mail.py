"""Reaching the test mail servers: Postfix (scripts/smtp.sh) and Dovecot (scripts/imap.sh).

Postfix on 127.0.0.1:$TEST_SMTP_PORT delivers the test domain (``vo-leads.test``) into Dovecot's
mailboxes; every test user has the password $TEST_IMAP_PASSWORD. Tests that use them carry
``@pytest.mark.smtp`` (and ``imap`` when they read back); with REQUIRE_INTEGRATION=1 a skip fails.

    settings = require_smtp()                     # SmtpSettings for the local Postfix
    async with imap_mailbox("prospect") as box:   # prospect@vo-leads.test over IMAP
        received = await box.wait_for("Message-ID", message_id)   # an email.message.Message
        dsn = await box.wait_for_text(message_id)                  # searches attached parts too
    async with dealer_folder() as folder:         # a fresh folder of the dealer's account
        ingest_settings = folder.settings()       # ingest's IMAP poller reads that folder
        raw = await folder.take(f'HEADER Message-ID "{message_id}"')   # moved there from INBOX
"""

from __future__ import annotations

import asyncio
import email
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage, Message
from typing import Any

import aioimaplib
import pytest

from shared.messaging.lead_tokens import LeadTokens
from shared.messaging.outgoing_email import as_email_message, render_email
from shared.messaging.settings import SmtpSettings

MAIL_DOMAIN = os.environ.get("SMTP_DOMAIN", "vo-leads.test")
SMTP_HOST = os.environ.get("TEST_SMTP_HOST", "127.0.0.1")
SMTP_PORT = int(os.environ.get("TEST_SMTP_PORT", "10025"))
IMAP_HOST = os.environ.get("TEST_IMAP_HOST", "127.0.0.1")
IMAP_PORT = int(os.environ.get("TEST_IMAP_PORT", "10143"))
IMAP_PASSWORD = os.environ.get("TEST_IMAP_PASSWORD", "ingest-test")
# Test users of scripts/imap.sh (IMAP_USER and IMAP_EXTRA_USERS).
DEALER = f"concession@{MAIL_DOMAIN}"
PROSPECT = f"prospect@{MAIL_DOMAIN}"
UNKNOWN = f"nobody-here@{MAIL_DOMAIN}"  # no such mailbox: Dovecot refuses it, Postfix bounces


def _reachable(host: str, port: int) -> OSError | None:
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        return exc
    return None


def require_smtp() -> SmtpSettings:
    """Settings for the local Postfix; skips the test when it does not answer."""
    error = _reachable(SMTP_HOST, SMTP_PORT)
    if error is not None:
        pytest.skip(
            f"SMTP server unreachable at {SMTP_HOST}:{SMTP_PORT} ({type(error).__name__}): "
            "run scripts/smtp.sh start"
        )
    return SmtpSettings(smtp_host=SMTP_HOST, smtp_port=SMTP_PORT, smtp_tls="none")


@dataclass
class ImapMailbox:
    client: Any
    user: str

    async def search(self, criteria: str) -> list[bytes]:
        """Raw messages of INBOX matching an IMAP SEARCH ``criteria``."""
        response = await self.client.select("INBOX")
        assert response.result == "OK", response
        response = await self.client.uid_search(criteria)
        assert response.result == "OK", response
        uids = response.lines[0].split() if response.lines and response.lines[0] else []
        messages: list[bytes] = []
        for uid in uids:
            fetched = await self.client.uid("fetch", uid.decode(), "(BODY.PEEK[])")
            assert fetched.result == "OK", fetched
            messages.extend(bytes(line) for line in fetched.lines if isinstance(line, bytearray))
        return messages

    async def wait_for(self, header: str, value: str, *, within_s: float = 15.0) -> Message:
        """The one message whose ``header`` contains ``value``, once delivered."""
        return await self._wait(f"HEADER {header} {_quoted(value)}", header, within_s)

    async def wait_for_text(self, value: str, *, within_s: float = 15.0) -> Message:
        """The one message whose headers or body (attached parts included) contain ``value``."""
        return await self._wait(f"TEXT {_quoted(value)}", "text", within_s)

    async def _wait(self, criteria: str, what: str, within_s: float) -> Message:
        deadline = time.monotonic() + within_s
        while True:
            found = await self.search(criteria)
            if found:
                assert len(found) == 1, f"{len(found)} messages match the {what}"
                return email.message_from_bytes(found[0])
            if time.monotonic() > deadline:
                raise AssertionError(f"no message matching the {what} in {self.user}'s INBOX")
            await asyncio.sleep(0.1)


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@asynccontextmanager
async def imap_mailbox(user: str) -> AsyncIterator[ImapMailbox]:
    """The INBOX of a test user (``concession``, ``prospect``, ``ingest``) over IMAP."""
    error = _reachable(IMAP_HOST, IMAP_PORT)
    if error is not None:
        pytest.skip(
            f"IMAP server unreachable at {IMAP_HOST}:{IMAP_PORT} ({type(error).__name__}): "
            "run scripts/imap.sh start"
        )
    client = aioimaplib.IMAP4(host=IMAP_HOST, port=IMAP_PORT)
    await client.wait_hello_from_server()
    login = await client.login(user.partition("@")[0], IMAP_PASSWORD)
    assert login.result == "OK", login
    try:
        yield ImapMailbox(client, user)
    finally:
        await client.logout()


@dataclass
class DealerFolder:
    """A fresh folder of the dealer's account (``concession``) for ingest's IMAP poller: a test
    moves the messages it waited for there from the shared INBOX, so other tests' mail is never
    taken in."""

    client: Any
    name: str

    @property
    def processed(self) -> str:
        return f"{self.name}-done"

    def settings(self) -> dict[str, Any]:
        """Ingest's IMAP settings (``INGEST_IMAP_*``) for this folder."""
        return {
            "imap_host": IMAP_HOST,
            "imap_port": IMAP_PORT,
            "imap_ssl": False,
            "imap_user": DEALER.partition("@")[0],
            "imap_password": IMAP_PASSWORD,
            "imap_mailboxes": [self.name],
            "imap_processed_mailbox": self.processed,
            "imap_poll_interval_s": 0.1,
        }

    async def take(self, criteria: str) -> bytes:
        """Move the one INBOX message matching an IMAP SEARCH ``criteria`` here (wait for it
        first: ``imap_mailbox(DEALER).wait_for…``); returns its bytes."""
        assert (await self.client.select("INBOX")).result == "OK"
        found = await self.client.uid_search(criteria)
        uids = found.lines[0].split() if found.lines and found.lines[0] else []
        assert len(uids) == 1, f"{len(uids)} messages match"
        uid = uids[0].decode()
        fetched = await self.client.uid("fetch", uid, "(BODY.PEEK[])")
        body = next(bytes(line) for line in fetched.lines if isinstance(line, bytearray))
        assert (await self.client.uid("move", uid, self.name)).result == "OK"
        return body

    async def append(self, raw: bytes) -> None:
        """Deliver ``raw`` here again (a second copy of a message)."""
        assert (await self.client.append(raw, mailbox=self.name)).result == "OK"

    async def count(self, mailbox: str) -> int:
        response = await self.client.status(mailbox, "(MESSAGES)")
        assert response.result == "OK", response
        text = b" ".join(line for line in response.lines if isinstance(line, bytes)).decode()
        return int(text.split("MESSAGES", 1)[1].strip(" ()").split()[0].rstrip(")"))


@asynccontextmanager
async def dealer_folder() -> AsyncIterator[DealerFolder]:
    """A new folder (and its processed folder) of the dealer's account, deleted afterwards."""
    error = _reachable(IMAP_HOST, IMAP_PORT)
    if error is not None:
        pytest.skip(
            f"IMAP server unreachable at {IMAP_HOST}:{IMAP_PORT} ({type(error).__name__}): "
            "run scripts/imap.sh start"
        )
    client = aioimaplib.IMAP4(host=IMAP_HOST, port=IMAP_PORT)
    await client.wait_hello_from_server()
    login = await client.login(DEALER.partition("@")[0], IMAP_PASSWORD)
    assert login.result == "OK", login
    folder = DealerFolder(client, f"t{uuid.uuid4().hex[:10]}")
    assert (await client.create(folder.name)).result == "OK"
    try:
        yield folder
    finally:
        for name in (folder.name, folder.processed):
            await client.delete(name)
        await client.logout()


DEALER_ANSWER_TEXT = "Bonjour Hélène,\nNous vous rappelons avant 17 h.\n"


def dealer_answer(
    tokens: LeadTokens,
    lead_id: str,
    message_key: str,
    *,
    to: str,
    date: datetime,
    dealer: str = DEALER,
    subject: str = "Votre demande : Citroën C3",
) -> EmailMessage:
    """The dealer's first answer to a lead, as qualify renders it (Message-ID and reply address
    tied to the lead), whose reply or bounce the ingest tests feed back."""
    return as_email_message(
        render_email(
            tokens=tokens,
            lead_id=lead_id,
            message_key=message_key,
            sender=f"Garage Dupont <{dealer}>",
            to=to,
            reply_mailbox=dealer,
            subject=subject,
            text=DEALER_ANSWER_TEXT,
            date=date,
            auto_reply=True,
        )
    )
