"""The SMTP sender's failure classification, and its behaviour without a server."""

from __future__ import annotations

import ssl
from email.message import EmailMessage

import aiosmtplib
import pytest

from shared.messaging.errors import (
    NotConfigured,
    PermanentSendError,
    SendError,
    TransientSendError,
)
from shared.messaging.settings import SmtpSettings
from shared.messaging.smtp_sender import SmtpSender, classify_smtp_error, queue_id_of
from shared.redact import safe_error_text
from tests.support.ports import free_port

ADDRESS = "camille.durand@example.fr"


def _refused(*codes: int) -> aiosmtplib.SMTPRecipientsRefused:
    return aiosmtplib.SMTPRecipientsRefused(
        [
            aiosmtplib.SMTPRecipientRefused(code, f"5.1.1 <{ADDRESS}> User unknown", ADDRESS)
            for code in codes
        ]
    )


@pytest.mark.parametrize(
    ("exc", "kind", "text"),
    [
        (_refused(550), PermanentSendError, "SMTP RCPT refused: 550 5.1.1"),
        (_refused(450), TransientSendError, "SMTP RCPT refused: 450 5.1.1"),
        (_refused(550, 451), TransientSendError, "SMTP RCPT refused: 550 5.1.1"),
        (
            aiosmtplib.SMTPSenderRefused(553, f"5.7.1 <{ADDRESS}> rejected", ADDRESS),
            PermanentSendError,
            "SMTP MAIL FROM refused: 553 5.7.1",
        ),
        (
            aiosmtplib.SMTPDataError(452, "4.3.1 Insufficient system storage"),
            TransientSendError,
            "SMTP DATA refused: 452 4.3.1",
        ),
        (
            aiosmtplib.SMTPDataError(554, f"5.7.1 spam from {ADDRESS}"),
            PermanentSendError,
            "SMTP DATA refused: 554 5.7.1",
        ),
        (
            aiosmtplib.SMTPAuthenticationError(535, "5.7.8 Authentication credentials invalid"),
            TransientSendError,
            "SMTP credentials refused: 535 5.7.8",
        ),
        (
            aiosmtplib.SMTPConnectResponseError(554, "5.3.2 no service"),
            TransientSendError,
            "SMTP greeting refused: 554 5.3.2",
        ),
        (aiosmtplib.SMTPReadTimeoutError("timed out"), TransientSendError, "SMTP timeout"),
        (aiosmtplib.SMTPConnectTimeoutError("timed out"), TransientSendError, "SMTP timeout"),
        (
            aiosmtplib.SMTPServerDisconnected("lost"),
            TransientSendError,
            "SMTP connection failed (SMTPServerDisconnected)",
        ),
        (
            ConnectionRefusedError(111, "refused"),
            TransientSendError,
            "SMTP connection failed (ConnectionRefusedError)",
        ),
        (
            aiosmtplib.SMTPNotSupported("STARTTLS extension not supported by server."),
            TransientSendError,
            "SMTP server lacks a required extension (e.g. STARTTLS)",
        ),
        (ssl.SSLError("bad cert"), TransientSendError, "SMTP TLS failed (SSLError)"),
    ],
)
def test_classification(exc: BaseException, kind: type[SendError], text: str) -> None:
    error = classify_smtp_error(exc)
    assert type(error) is kind
    assert error.transient is (kind is TransientSendError)
    assert str(error) == text
    assert ADDRESS not in safe_error_text(error)


def test_queue_ids_of_common_servers() -> None:
    assert queue_id_of("2.0.0 Ok: queued as 4Fq1xD2Z3k") == "4Fq1xD2Z3k"
    assert queue_id_of("OK id=1tQ2Xy-0004Ab-3C") == "1tQ2Xy-0004Ab-3C"
    assert queue_id_of("2.0.0 Ok") is None


def _message() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "concession@vo-leads.test"
    message["To"] = ADDRESS
    message["Subject"] = "Bonjour"
    message.set_content("Bonjour")
    return message


async def test_not_configured_waits() -> None:
    sender = SmtpSender(SmtpSettings())
    assert not sender.configured
    with pytest.raises(NotConfigured) as caught:
        await sender.send(_message())
    assert caught.value.transient


async def test_connection_refused_is_transient_and_names_no_address() -> None:
    sender = SmtpSender(SmtpSettings(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_tls="none"))
    with pytest.raises(TransientSendError) as caught:
        await sender.send(_message())
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    assert ADDRESS not in str(caught.value)
    assert "connection failed" in str(caught.value)


async def test_message_without_recipient_is_permanent() -> None:
    message = _message()
    del message["To"]
    sender = SmtpSender(SmtpSettings(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_tls="none"))
    with pytest.raises(PermanentSendError):
        await sender.send(message)
