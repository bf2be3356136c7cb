"""Handing an e-mail to an SMTP server (aiosmtplib): TLS and credentials from ``SmtpSettings``,
the server's queue id back, failures classified.

An ``OutgoingEmail`` (``outgoing_email.render_email``) goes as the bytes it already is
(``sendmail``); an ``EmailMessage`` is flattened by aiosmtplib (``send_message``), which costs
about two milliseconds of header refolding.

By default one connection per message: the sender is stateless (nothing to reconnect or close).
A long-lived sender (qualify's worker) passes ``reuse_connections=True``: an open connection
carries the next message (``smtp_pool``: half the CPU of a send on loopback), a connection the
server dropped while idle is replaced and the message tried once more on a fresh one (only
before DATA: never sent twice), and ``aclose`` closes what is left. The name this host gives in
EHLO is looked up once per sender: aiosmtplib would otherwise resolve it on every connection, in
a thread.
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
from shared.messaging.smtp_pipeline import can_pipeline, send_pipelined
from shared.messaging.smtp_pool import PooledConnection, SmtpConnectionPool
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
    """An SMTP client that awaits ``before_data`` (when set, per message) just before DATA: the
    envelope was accepted (MAIL, RCPT), nothing is irreversible yet; from DATA's final dot on,
    the server may hold the message."""

    before_data: BeforeData | None = None

    async def data(self, message: str | bytes, /, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        if self.before_data is not None:
            await self.before_data()
        return await super().data(message, **kwargs)


def _stale(exc: BaseException) -> bool:
    """The failure of a reused connection the server closed while it was idle (a hang-up, or
    ``421`` "closing the channel" to the first command)."""
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | ConnectionError):
        return True
    return isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code == 421


class _HookFailed(Exception):
    def __init__(self, error: BaseException) -> None:
        super().__init__("before_data failed")
        self.error = error


class SmtpSender:
    """Sends ``OutgoingEmail``s and ``EmailMessage``s through the configured server."""

    def __init__(self, settings: SmtpSettings, *, reuse_connections: bool = False) -> None:
        self.settings = settings
        self._local_hostname = settings.smtp_local_hostname
        self._pool = (
            SmtpConnectionPool(self._new_client, idle_s=settings.smtp_idle_s)
            if reuse_connections
            else None
        )

    async def _ehlo_name(self) -> str:
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return self._local_hostname

    @property
    def configured(self) -> bool:
        return bool(self.settings.smtp_host)

    @property
    def idle_connections(self) -> int:
        """Open connections waiting for the next message (0 without ``reuse_connections``)."""
        return 0 if self._pool is None else self._pool.idle_count

    def _new_client(self) -> _HookedSMTP:
        settings = self.settings
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return _HookedSMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            use_tls=settings.smtp_tls == "tls",
            start_tls=settings.smtp_tls == "starttls",  # True: required, False: never
            validate_certs=settings.smtp_validate_certs,
            username=settings.smtp_username,
            password=password,
            timeout=settings.smtp_timeout_s,
            local_hostname=self._local_hostname,
        )

    async def aclose(self) -> None:
        """Close the connections kept open (a stateless sender has none)."""
        if self._pool is not None:
            await self._pool.aclose()

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
        ambiguous: the server may hold the message. It is awaited at most once per call."""
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

        await self._ehlo_name()
        try:
            if self._pool is None:
                client = self._new_client()
                client.before_data = hook
                async with client:
                    refused, response = await _hand(client, message, envelope_from, recipients)
            else:
                refused, response = await self._send_pooled(
                    self._pool, message, envelope_from, recipients, hook
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

    async def _send_pooled(
        self,
        pool: SmtpConnectionPool,
        message: OutgoingEmail | EmailMessage,
        envelope_from: str | None,
        recipients: Sequence[str] | None,
        hook: BeforeData | None,
    ) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
        """On a kept connection. When the server dropped it while idle, the message is tried
        once more on a fresh connection, provided DATA was not begun (then nothing can have
        been delivered); the other idle connections, as old, are closed too."""
        for attempt in (1, 2):
            connection: PooledConnection = await pool.acquire(fresh=attempt > 1)
            client = connection.client
            assert isinstance(client, _HookedSMTP)
            at_data = False

            async def before_data() -> None:
                nonlocal at_data
                at_data = True
                if hook is not None:
                    await hook()

            client.before_data = before_data
            try:
                result = await _hand(client, message, envelope_from, recipients, pipeline=True)
            except BaseException as exc:
                pool.discard(connection)  # its state is unknown: never reused
                if attempt == 1 and connection.reused and not at_data and _stale(exc):
                    pool.close_idle()
                    continue
                raise
            finally:
                client.before_data = None
            pool.release(connection)
            return result
        raise AssertionError("unreachable")  # pragma: no cover - the second attempt returns


async def _hand(
    client: aiosmtplib.SMTP,
    message: OutgoingEmail | EmailMessage,
    envelope_from: str | None,
    recipients: Sequence[str] | None,
    *,
    pipeline: bool = False,
) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
    if isinstance(message, OutgoingEmail):
        # Already 7-bit and folded: no BODY=8BITMIME, no flattening.
        sender = envelope_from or message.sender
        to = recipients or message.recipients
        if pipeline and isinstance(client, _HookedSMTP) and can_pipeline(client, sender, to):
            # A kept connection whose server pipelines (after its first message: EHLO known).
            return await send_pipelined(client, sender, to, message.data, client.before_data)
        return await client.sendmail(sender, to, message.data)
    return await client.send_message(message, sender=envelope_from, recipients=recipients)
