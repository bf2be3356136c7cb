"""Handing an e-mail to an SMTP server (aiosmtplib): one connection per message, TLS and
credentials from ``SmtpSettings``, the server's queue id back, failures classified.

An ``OutgoingEmail`` (``outgoing_email.render_email``) goes as the bytes it already is
(``sendmail``); an ``EmailMessage`` is flattened by aiosmtplib (``send_message``), which costs
about two milliseconds of header refolding.

One connection per message keeps the sender stateless (nothing to reconnect, safe to share across
tasks); on loopback or a LAN relay a connection costs about a millisecond. The name this host
gives in EHLO is looked up once per sender: aiosmtplib would otherwise resolve it on every
connection, in a thread.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import aiosmtplib

from shared.messaging.errors import NotConfigured, PermanentSendError, SendError, TransientSendError
from shared.messaging.settings import SmtpSettings
from shared.messaging.wire_form import OutgoingEmail

_ENHANCED = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
# Postfix "queued as 4Fq1x…", Exim "id=1abc-…", Exchange/others "<id> Queued mail for delivery"
_QUEUE_ID = (
    re.compile(r"queued as ([A-Za-z0-9]+)"),
    re.compile(r"\bid=([A-Za-z0-9-]+)"),
    re.compile(r"^\S*\s*<?([A-Za-z0-9.@-]+)>? Queued", re.IGNORECASE),
)


@dataclass(frozen=True)
class SentEmail:
    message_id: str | None  # the message's own Message-ID header
    queue_id: str | None  # the server's id of the accepted message, when its reply names one
    reply: str  # the text of the server's final reply, e.g. "2.0.0 Ok: queued as 4Fq1xD2Z"
    refused: tuple[str, ...] = ()  # recipients refused while others were accepted


def queue_id_of(reply: str) -> str | None:
    for pattern in _QUEUE_ID:
        match = pattern.search(reply)
        if match:
            return match.group(1)
    return None


def _reply_summary(code: int, message: str) -> str:
    """Reply code and enhanced status only: the text after them may quote an address."""
    enhanced = _ENHANCED.search(message)
    return f"{code} {enhanced.group(1)}" if enhanced else str(code)


def _by_code(stage: str, code: int, message: str) -> SendError:
    summary = f"SMTP {stage} refused: {_reply_summary(code, message)}"
    if 400 <= code < 500:
        return TransientSendError(summary, code=code)
    return PermanentSendError(summary, code=code)


def classify_smtp_error(exc: BaseException) -> SendError:
    """The send error an aiosmtplib (or socket) exception means, with a text free of addresses."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refusal.code for refusal in exc.recipients]
        transient = any(400 <= code < 500 for code in codes) or not codes
        code = next((c for c in codes if 400 <= c < 500), codes[0] if codes else None)
        first = exc.recipients[0] if exc.recipients else None
        summary = _reply_summary(first.code, first.message) if first else "no reply"
        cls: type[SendError] = TransientSendError if transient else PermanentSendError
        return cls(f"SMTP RCPT refused: {summary}", code=code)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return TransientSendError(
            f"SMTP credentials refused: {_reply_summary(exc.code, exc.message)}", code=exc.code
        )
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError | aiosmtplib.SMTPHeloError):
        # The server turns the connection away: a server-side state, not this message's fault.
        return TransientSendError(
            f"SMTP greeting refused: {_reply_summary(exc.code, exc.message)}", code=exc.code
        )
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return _by_code("MAIL FROM", exc.code, exc.message)
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        return _by_code("RCPT", exc.code, exc.message)
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return _by_code("DATA", exc.code, exc.message)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _by_code("command", exc.code, exc.message)
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return TransientSendError("SMTP timeout")
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return TransientSendError("SMTP server lacks a required extension (e.g. STARTTLS)")
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPConnectError):
        return TransientSendError(f"SMTP connection failed ({type(exc).__name__})")
    if isinstance(exc, ssl.SSLError):
        return TransientSendError(f"SMTP TLS failed ({type(exc).__name__})")
    if isinstance(exc, OSError):
        return TransientSendError(f"SMTP connection failed ({type(exc).__name__})")
    return TransientSendError(f"SMTP failure ({type(exc).__name__})")


BeforeData = Callable[[], Awaitable[None]]


class _HookedSMTP(aiosmtplib.SMTP):
    """An SMTP client that awaits a hook just before DATA: the envelope was accepted (MAIL,
    RCPT), nothing is irreversible yet; from DATA's final dot on, the server may hold the
    message."""

    def __init__(self, *args: Any, before_data: BeforeData, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._before_data = before_data

    async def data(self, message: str | bytes, /, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        await self._before_data()
        return await super().data(message, **kwargs)


class _HookFailed(Exception):
    def __init__(self, error: BaseException) -> None:
        super().__init__("before_data failed")
        self.error = error


class SmtpSender:
    """Sends ``OutgoingEmail``s and ``EmailMessage``s through the configured server."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._local_hostname = settings.smtp_local_hostname

    async def _ehlo_name(self) -> str:
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return self._local_hostname

    @property
    def configured(self) -> bool:
        return bool(self.settings.smtp_host)

    def _client(self, local_hostname: str, before_data: BeforeData | None) -> aiosmtplib.SMTP:
        settings = self.settings
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        options: dict[str, Any] = {} if before_data is None else {"before_data": before_data}
        return (aiosmtplib.SMTP if before_data is None else _HookedSMTP)(
            **options,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            use_tls=settings.smtp_tls == "tls",
            start_tls=settings.smtp_tls == "starttls",  # True: required, False: never
            validate_certs=settings.smtp_validate_certs,
            username=settings.smtp_username,
            password=password,
            timeout=settings.smtp_timeout_s,
            local_hostname=local_hostname,
        )

    async def send(
        self,
        message: OutgoingEmail | EmailMessage,
        *,
        envelope_from: str | None = None,
        recipients: Sequence[str] | None = None,
        before_data: BeforeData | None = None,
    ) -> SentEmail:
        """Hand ``message`` over; raises ``TransientSendError`` (retry later) or
        ``PermanentSendError``. ``envelope_from`` (the Return-Path, where bounces go) defaults to
        From; ``recipients`` to To/Cc/Bcc (an ``OutgoingEmail``'s own ``recipients``).

        ``before_data`` is awaited once the server accepted the envelope, just before DATA (the
        one irreversible step): a sender records there that the message may now leave. An
        exception it raises aborts the transaction (nothing is sent) and propagates unchanged.
        A failure after it without a server reply (``code`` None: connection lost, timeout) is
        ambiguous: the server may hold the message."""
        if not self.configured:
            raise NotConfigured("SMTP not configured (smtp_host unset)")
        if isinstance(message, OutgoingEmail):
            has_recipient = bool(recipients or message.recipients)
            message_id: str | None = message.message_id
        else:
            has_recipient = bool(recipients) or any(
                message.get_all(name) for name in ("To", "Cc", "Bcc")
            )
            message_id = str(message["Message-ID"]) if message["Message-ID"] else None
        if not has_recipient:
            raise PermanentSendError("message without recipient")
        hook: BeforeData | None = None
        if before_data is not None:
            hooked = before_data

            async def hook() -> None:
                try:
                    await hooked()
                except Exception as exc:
                    raise _HookFailed(exc) from exc

        try:
            async with self._client(await self._ehlo_name(), hook) as client:
                if isinstance(message, OutgoingEmail):
                    # Already 7-bit and folded: no BODY=8BITMIME, no flattening.
                    refused, response = await client.sendmail(
                        envelope_from or message.sender,
                        recipients or message.recipients,
                        message.data,
                    )
                else:
                    refused, response = await client.send_message(
                        message, sender=envelope_from, recipients=recipients
                    )
        except _HookFailed as failed:
            raise failed.error from None
        except ValueError:
            raise PermanentSendError("message without sender or recipient") from None
        except Exception as exc:
            # ``from None``: the original exception's text may quote an address.
            raise classify_smtp_error(exc) from None
        # aiosmtplib hands back the text of the DATA reply (its code was 250).
        return SentEmail(
            message_id=message_id,
            queue_id=queue_id_of(response),
            reply=response,
            refused=tuple(refused),
        )
