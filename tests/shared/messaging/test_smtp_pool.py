"""A sender that reuses its SMTP connections: one connection for many messages, a connection the
server dropped while idle replaced once (never after DATA began: no message twice), failures
classified as without reuse, idle connections and the rest closed."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import pytest

from shared.messaging.errors import PermanentSendError, TransientSendError
from shared.messaging.settings import SmtpSettings
from shared.messaging.smtp_sender import SmtpSender
from tests.support.smtp_server import FakeSmtpServer

ADDRESS = "camille.durand@example.fr"


def _message(n: int = 1) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "concession@vo-leads.test"
    message["To"] = ADDRESS
    message["Subject"] = f"Bonjour {n}"
    message["Message-ID"] = f"<m{n}@vo-leads.test>"
    message.set_content("Bonjour")
    return message


def _sender(server: FakeSmtpServer, *, idle_s: float = 30.0) -> SmtpSender:
    settings = SmtpSettings(
        smtp_host="127.0.0.1",
        smtp_port=server.port,
        smtp_tls="none",
        smtp_local_hostname="sender.test",
        smtp_idle_s=idle_s,
    )
    return SmtpSender(settings, reuse_connections=True)


class _Hook:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1


async def test_messages_share_one_connection_and_close_goes_with_quit() -> None:
    async with FakeSmtpServer() as server:
        sender = _sender(server)
        sent = [await sender.send(_message(n)) for n in range(3)]
        assert [s.queue_id for s in sent] == ["Q1", "Q2", "Q3"]
        assert server.connections == 1
        assert sender.idle_connections == 1
        await sender.aclose()
        assert sender.idle_connections == 0
        assert server.quits == 1


async def test_without_reuse_each_message_has_its_connection() -> None:
    async with FakeSmtpServer() as server:
        settings = SmtpSettings(smtp_host="127.0.0.1", smtp_port=server.port, smtp_tls="none")
        sender = SmtpSender(settings)
        for n in range(2):
            await sender.send(_message(n))
        assert server.connections == 2
        assert server.quits == 2
        assert sender.idle_connections == 0


@pytest.mark.parametrize("pipelining", [False, True], ids=["one-by-one", "pipelined"])
async def test_a_connection_dropped_while_idle_is_replaced_and_the_message_sent_once(
    pipelining: bool,
) -> None:
    async with FakeSmtpServer(pipelining=pipelining) as server:
        sender = _sender(server)
        await sender.send(_message(1))
        server.timeout_next_mail = True  # "421 timeout exceeded" and hang-up, at MAIL
        hook = _Hook()
        sent = await sender.send(_message(2), before_data=hook)
        assert sent.queue_id == "Q2"
        assert hook.calls == 1
        assert server.connections == 2
        assert len(server.messages) == 2
        await sender.aclose()


async def test_a_connection_lost_after_hand_over_is_not_retried() -> None:
    async with FakeSmtpServer() as server:
        sender = _sender(server)
        await sender.send(_message(1))
        server.hang_up_at_data = True
        hook = _Hook()
        with pytest.raises(TransientSendError) as caught:
            await sender.send(_message(2), before_data=hook)
        # Ambiguous (no reply after the hand-over): the caller decides, nothing is resent.
        assert caught.value.code is None
        assert hook.calls == 1
        assert server.connections == 1
        assert len(server.messages) == 1
        assert sender.idle_connections == 0
        await sender.aclose()


async def test_a_fresh_connection_turned_away_is_not_retried() -> None:
    async with FakeSmtpServer() as server:
        sender = _sender(server)
        server.timeout_next_mail = True
        with pytest.raises(TransientSendError) as caught:
            await sender.send(_message(1))
        assert str(caught.value) == "SMTP MAIL FROM refused: 421 4.4.2"
        assert server.connections == 1
        assert server.messages == []
        await sender.aclose()


async def test_a_refusal_is_classified_as_before_and_its_connection_dropped() -> None:
    async with FakeSmtpServer() as server:
        sender = _sender(server)
        await sender.send(_message(1))
        server.refuse_rcpt = 550
        with pytest.raises(PermanentSendError) as caught:
            await sender.send(_message(2))
        assert str(caught.value) == "SMTP RCPT refused: 550 5.1.1"
        assert ADDRESS not in str(caught.value)
        assert sender.idle_connections == 0
        server.refuse_rcpt = None
        await sender.send(_message(3))
        assert server.connections == 2
        await sender.aclose()


async def test_an_idle_connection_is_closed_after_smtp_idle_s() -> None:
    async with FakeSmtpServer() as server:
        sender = _sender(server, idle_s=0.05)
        await sender.send(_message(1))
        assert sender.idle_connections == 1
        for _ in range(100):
            if server.quits:
                break
            await asyncio.sleep(0.02)
        assert sender.idle_connections == 0
        assert server.quits == 1
        await sender.send(_message(2))  # a new connection for the next message
        assert server.connections == 2
        await sender.aclose()


async def test_concurrent_sends_take_their_own_connections() -> None:
    async with FakeSmtpServer() as server:
        sender = _sender(server)
        await asyncio.gather(*(sender.send(_message(n)) for n in range(3)))
        assert len(server.messages) == 3
        assert server.connections == 3
        assert sender.idle_connections == 3
        await asyncio.gather(*(sender.send(_message(n)) for n in range(3)))
        assert server.connections == 3
        await sender.aclose()
        assert server.quits == 3
