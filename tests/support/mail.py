"""Reaching the test mail servers: Postfix (scripts/smtp.sh) and Dovecot (scripts/imap.sh).

Postfix on 127.0.0.1:$TEST_SMTP_PORT delivers the test domain (``vo-leads.test``) into Dovecot's
mailboxes; every test user has the password $TEST_IMAP_PASSWORD. Tests that use them carry
``@pytest.mark.smtp`` (and ``imap`` when they read back); with REQUIRE_INTEGRATION=1 a skip fails.

    settings = require_smtp()                     # SmtpSettings for the local Postfix
    async with imap_mailbox("prospect") as box:   # prospect@vo-leads.test over IMAP
        received = await box.wait_for("Message-ID", message_id)   # an email.message.Message
        dsn = await box.wait_for_text(message_id)                  # searches attached parts too
"""

from __future__ import annotations

import asyncio
import email
import os
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.message import Message
from typing import Any

import aioimaplib
import pytest

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
