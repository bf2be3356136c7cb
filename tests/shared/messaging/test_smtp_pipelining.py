"""A kept connection to a server that pipelines (RFC 2920, Postfix does) carries a message in
two round trips: ``MAIL``, ``RCPT`` and ``DATA`` in one write, then the content. ``before_data``
still runs once the envelope (and ``DATA``) was accepted and before the content; a failure keeps
the rules of ``test_smtp_pool``: resent only when nothing can have been delivered (a connection
dropped while idle is tested there, pipelined and not)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from aiosmtplib.protocol import SMTPProtocol

from shared.messaging import smtp_pipeline
from shared.messaging.errors import PermanentSendError, TransientSendError
from shared.messaging.settings import SmtpSettings
from shared.messaging.smtp_pipeline import _LEADING_DOT, _LONE_LINE_END, wire_content
from shared.messaging.smtp_sender import SmtpSender
from shared.messaging.wire_form import OutgoingEmail
from tests.support.mail import PROSPECT, require_smtp
from tests.support.smtp_server import FakeSmtpServer

ADDRESS = "camille.durand@example.fr"
BOUNCES = "concession+u2bkq.abc@vo-leads.test"


def _email(n: int, to: str = ADDRESS) -> OutgoingEmail:
    data = (
        f"From: concession@vo-leads.test\r\nTo: {to}\r\nSubject: Bonjour {n}\r\n"
        f"Message-ID: <m{n}@vo-leads.test>\r\n\r\nBonjour\r\n.un point en tete\r\n"
    ).encode()
    return OutgoingEmail(
        data=data, message_id=f"<m{n}@vo-leads.test>", sender=BOUNCES, recipients=(to,)
    )


def _sender(port: int, host: str = "127.0.0.1") -> SmtpSender:
    settings = SmtpSettings(
        smtp_host=host, smtp_port=port, smtp_tls="none", smtp_local_hostname="sender.test"
    )
    return SmtpSender(settings, reuse_connections=True)


class _Hook:
    def __init__(self, server: FakeSmtpServer | None = None, *, fail: bool = False) -> None:
        self.calls = 0
        self.delivered_before: list[int] = []
        self._server = server
        self._fail = fail

    async def __call__(self) -> None:
        self.calls += 1
        if self._server is not None:
            self.delivered_before.append(len(self._server.messages))
        if self._fail:
            raise LookupError("claim lost")


@contextmanager
def client_writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """What the SMTP client wrote to its socket, one item per write."""
    writes: list[bytes] = []
    original = SMTPProtocol.write

    def write(self: SMTPProtocol, data: bytes) -> None:
        writes.append(data)
        original(self, data)

    monkeypatch.setattr(SMTPProtocol, "write", write)
    yield writes
    monkeypatch.setattr(SMTPProtocol, "write", original)


async def test_a_message_on_a_kept_connection_costs_two_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: four (MAIL, RCPT, DATA, the content), each waiting for its reply."""
    async with FakeSmtpServer(pipelining=True) as server:
        sender = _sender(server.port)
        await sender.send(_email(1))  # the connection's first message also says EHLO
        hook = _Hook(server)
        with client_writes(monkeypatch) as writes:
            sent = await sender.send(_email(2), envelope_from=BOUNCES, before_data=hook)
        assert len(writes) == 2
        assert writes[0] == (f"MAIL FROM:<{BOUNCES}>\r\nRCPT TO:<{ADDRESS}>\r\nDATA\r\n".encode())
        assert writes[1].endswith(b"\r\n..un point en tete\r\n.\r\n")  # dot-stuffed
        assert sent.queue_id == "Q2"
        assert sent.message_id == "<m2@vo-leads.test>"
        assert hook.calls == 1
        assert hook.delivered_before == [1]
        assert server.messages[1] == _email(2).data.replace(b"\r\n.un", b"\r\n..un")
        assert server.connections == 1
        assert sender.idle_connections == 1
        await sender.aclose()


async def test_without_pipelining_the_commands_go_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with FakeSmtpServer() as server:
        sender = _sender(server.port)
        await sender.send(_email(1))
        with client_writes(monkeypatch) as writes:
            await sender.send(_email(2))
        assert len(writes) == 4
        assert len(server.messages) == 2
        await sender.aclose()


async def test_a_refused_hook_sends_nothing_and_drops_the_connection() -> None:
    async with FakeSmtpServer(pipelining=True) as server:
        sender = _sender(server.port)
        await sender.send(_email(1))
        hook = _Hook(fail=True)
        with pytest.raises(LookupError):
            await sender.send(_email(2), before_data=hook)
        assert hook.calls == 1
        assert sender.idle_connections == 0
        await sender.send(_email(3))
        assert len(server.messages) == 2  # the first and the third
        assert server.connections == 2
        await sender.aclose()


async def test_a_hang_up_before_the_content_is_resent_once_without_a_hand_over() -> None:
    async with FakeSmtpServer(pipelining=True) as server:
        sender = _sender(server.port)
        await sender.send(_email(1))
        server.hang_up_at_data = True  # no 354: the content never left
        hook = _Hook()
        sent = await sender.send(_email(2), before_data=hook)
        assert sent.queue_id == "Q2"
        assert hook.calls == 1
        assert len(server.messages) == 2
        await sender.aclose()


async def test_a_connection_lost_after_hand_over_is_not_retried() -> None:
    async with FakeSmtpServer(pipelining=True) as server:
        sender = _sender(server.port)
        await sender.send(_email(1))
        server.hang_up_after_content = True
        hook = _Hook()
        with pytest.raises(TransientSendError) as caught:
            await sender.send(_email(2), before_data=hook)
        assert caught.value.code is None  # ambiguous: the caller decides, nothing is resent
        assert hook.calls == 1
        assert server.connections == 1
        assert sender.idle_connections == 0
        await sender.aclose()


async def test_a_refusal_is_classified_as_before_and_its_connection_dropped() -> None:
    async with FakeSmtpServer(pipelining=True) as server:
        sender = _sender(server.port)
        await sender.send(_email(1))
        server.refuse_rcpt = 550
        hook = _Hook()
        with pytest.raises(PermanentSendError) as caught:
            await sender.send(_email(2), before_data=hook)
        assert str(caught.value) == "SMTP RCPT refused: 550 5.1.1"
        assert ADDRESS not in str(caught.value)
        assert hook.calls == 0
        assert sender.idle_connections == 0
        server.refuse_rcpt = None
        await sender.send(_email(3))
        assert len(server.messages) == 2
        await sender.aclose()


@pytest.mark.smtp
async def test_postfix_takes_pipelined_messages_on_one_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    smtp = require_smtp()
    assert smtp.smtp_host is not None
    sender = _sender(smtp.smtp_port, smtp.smtp_host)
    try:
        await sender.send(_email(1, PROSPECT))
        with client_writes(monkeypatch) as writes:
            sent = [await sender.send(_email(n, PROSPECT)) for n in (2, 3)]
        assert len(writes) == 4
        assert all(s.queue_id for s in sent)
        assert sender.idle_connections == 1
    finally:
        await sender.aclose()


@pytest.mark.parametrize(
    "data",
    [
        b"Subject: a\r\n\r\nBonjour\r\n",  # CRLF only: sent as it is
        b"Subject: a\r\n\r\nBonjour",  # no final line end
        b"Subject: a\r\n\r\n.un point\r\n.\r\n",  # leading dots
        b".first\r\nx\r\n",
        b"Subject: a\n\nlone LF\n.dot\n",
        b"Subject: a\r\rlone CR\r\n",
        b"a\n\r\nb\r",  # LF CR LF: one lone LF among CRLFs
        b"",
    ],
)
def test_the_content_is_what_the_two_substitutions_give(data: bytes) -> None:
    """``wire_content`` skips the substitutions only where they would change nothing."""
    normalized = _LONE_LINE_END.sub(b"\r\n", data)
    if not normalized.endswith(b"\r\n"):
        normalized += b"\r\n"
    assert wire_content(data) == (_LEADING_DOT.sub(b"..", normalized), len(normalized))


async def test_replies_that_came_together_are_read_without_a_timer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Postfix answers ``MAIL``, ``RCPT`` and ``DATA`` in one write: the first reply is awaited
    under a timeout, the two others are in the buffer already (no timer each)."""
    timers: list[float | None] = []
    real = asyncio.timeout

    def counted(delay: float | None) -> asyncio.Timeout:
        timers.append(delay)
        return real(delay)

    monkeypatch.setattr(asyncio, "timeout", counted)
    replies = smtp_pipeline._Replies(SMTPProtocol())
    replies.data_received(b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>\r\n")
    codes = [(await replies.next(5.0)).code for _ in range(3)]
    assert codes == [250, 250, 354]
    assert timers == []  # all three were there before the first was awaited
    waiting = asyncio.ensure_future(replies.next(5.0))
    await asyncio.sleep(0)
    replies.data_received(b"250 2.0.0 Ok: queued as 4Fq1xD2Z\r\n")
    assert (await waiting).message == "2.0.0 Ok: queued as 4Fq1xD2Z"
    assert timers == [5.0]
