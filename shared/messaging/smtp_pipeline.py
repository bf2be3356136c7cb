"""One message on an open connection with SMTP PIPELINING (RFC 2920): ``MAIL``, ``RCPT`` and
``DATA`` leave in one write and their replies are read together, then the content goes after
``before_data``. Two round trips per message instead of four (``MAIL``, ``RCPT``, ``DATA``, the
content), and no address parsing per message: the envelope addresses are checked by a pattern.

The content's final dot is the irreversible step: ``before_data`` is awaited once the server
answered ``354`` to ``DATA``, just before the content. When it raises, or any reply is a
refusal, the connection is closed without the final dot: the server discards the transaction,
nothing is delivered (the caller never reuses that connection).

aiosmtplib's protocol reads one reply per command and drops what arrives while a reply awaits
pickup: the pipelined replies are read by ``_Replies``, which takes the transport over
(``set_protocol``) for the time of the pipelined commands, then hands it back.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence

import aiosmtplib
from aiosmtplib.protocol import SMTPProtocol

# A plain addr-spec: no control character, space, quote, angle bracket or comma (anything else
# takes aiosmtplib's own path, which parses and refuses what cannot go on a command line).
_PLAIN_ADDRESS = re.compile(r"[!#-'*+\-./0-9=?A-Z^-~]+@[A-Za-z0-9.\-\[\]:]+")
_LONE_LINE_END = re.compile(rb"\r(?!\n)|(?<!\r)\n")
_LEADING_DOT = re.compile(rb"(?m)^\.")
_MAX_REPLY = 64 * 1024

Reply = aiosmtplib.SMTPResponse


def wire_content(data: bytes) -> tuple[bytes, int]:
    """``data`` as DATA sends it: CRLF line ends, a final one, leading dots doubled (RFC 5321
    4.5.2); and its size before the doubling (``SIZE``). A rendered ``OutgoingEmail`` has CRLF
    line ends only and no line that starts with a dot: counted and searched, it goes as it is
    (the two substitutions would scan it for nothing: ~30 us per message of 1.3 kB)."""
    crlf = data.count(b"\r\n")
    if data.count(b"\r") == crlf == data.count(b"\n"):
        normalized = data  # every CR is followed by a LF and every LF preceded by a CR
    else:
        normalized = _LONE_LINE_END.sub(b"\r\n", data)
    if not normalized.endswith(b"\r\n"):
        normalized += b"\r\n"
    if normalized.startswith(b".") or b"\n." in normalized:
        return _LEADING_DOT.sub(b"..", normalized), len(normalized)
    return normalized, len(normalized)


def can_pipeline(client: aiosmtplib.SMTP, sender: str, recipients: Sequence[str]) -> bool:
    """Whether this message may go pipelined on ``client``: the server said PIPELINING (to an
    EHLO already sent on this connection) and every envelope address is a plain addr-spec."""
    if client.last_ehlo_response is None or not client.supports_extension("pipelining"):
        return False
    return bool(recipients) and all(
        _PLAIN_ADDRESS.fullmatch(address) for address in (sender, *recipients)
    )


class _Replies(asyncio.Protocol):
    """Collects the replies to pipelined commands; the connection's losses reach aiosmtplib's
    protocol as well (it stays the connection's state)."""

    def __init__(self, inner: SMTPProtocol) -> None:
        self._inner = inner
        self._buffer = bytearray()
        self._arrived = asyncio.Event()
        self._lost = False

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._arrived.set()

    def eof_received(self) -> bool | None:
        self._lost = True
        self._arrived.set()
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._arrived.set()
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def _parsed(self) -> Reply | None:
        lines: list[bytes] = []
        offset = 0
        while (end := self._buffer.find(b"\n", offset)) != -1:
            line = bytes(self._buffer[offset : end + 1])
            offset = end + 1
            lines.append(line)
            if line[3:4] != b"-":
                del self._buffer[:offset]
                try:
                    code = int(lines[0][:3])
                except ValueError:
                    raise aiosmtplib.SMTPResponseException(-1, "Malformed SMTP reply") from None
                text = b"\n".join(item[4:].strip(b" \t\r\n") for item in lines)
                return Reply(code, text.decode("utf-8", "surrogateescape"))
        if len(self._buffer) > _MAX_REPLY:
            raise aiosmtplib.SMTPResponseException(-1, "Response too long")
        return None

    async def next(self, limit_s: float | None) -> Reply:
        reply = self._parsed()
        if reply is not None:  # it came with an earlier one (pipelined replies): no timer
            return reply
        try:
            async with asyncio.timeout(limit_s):
                while (reply := self._parsed()) is None:
                    if self._lost:
                        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            raise aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response") from None
        return reply

    @property
    def leftover(self) -> bool:
        return bool(self._buffer)


async def send_pipelined(
    client: aiosmtplib.SMTP,
    sender: str,
    recipients: Sequence[str],
    data: bytes,
    before_data: Callable[[], Awaitable[None]] | None,
) -> tuple[dict[str, Reply], str]:
    """``client.sendmail(sender, recipients, data)`` pipelined (see the module's docstring);
    raises what ``sendmail`` raises, and closes ``client`` on any failure."""
    protocol = client.protocol
    if protocol is None or not client.is_connected:
        raise aiosmtplib.SMTPServerDisconnected("Server not connected")
    limit_s = client.timeout
    content, length = wire_content(data)
    size = f" SIZE={length}" if client.supports_extension("size") else ""
    commands = [f"MAIL FROM:<{sender}>{size}\r\n"]
    commands += [f"RCPT TO:<{recipient}>\r\n" for recipient in recipients]
    commands.append("DATA\r\n")
    transport = client.transport
    if transport is None:
        raise aiosmtplib.SMTPServerDisconnected("Server not connected")
    replies = _Replies(protocol)
    try:
        transport.set_protocol(replies)
        try:
            protocol.write("".join(commands).encode("ascii"))
            mail = await replies.next(limit_s)
            if mail.code != 250:
                raise aiosmtplib.SMTPSenderRefused(mail.code, mail.message, sender)
            refused: dict[str, Reply] = {}
            for recipient in recipients:
                reply = await replies.next(limit_s)
                if reply.code not in (250, 251):
                    refused[recipient] = reply
            if len(refused) == len(recipients):
                raise aiosmtplib.SMTPRecipientsRefused(
                    [
                        aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, recipient)
                        for recipient, reply in refused.items()
                    ]
                )
            start = await replies.next(limit_s)
            if start.code != 354:
                raise aiosmtplib.SMTPDataError(start.code, start.message)
            if replies.leftover:  # nothing may follow the 354
                raise aiosmtplib.SMTPResponseException(-1, "Unexpected data from the server")
        finally:
            transport.set_protocol(protocol)
        if before_data is not None:
            await before_data()
        protocol.write(content + b".\r\n")
        done = await protocol.read_response(timeout=limit_s)
        if done.code != 250:
            raise aiosmtplib.SMTPDataError(done.code, done.message)
    except BaseException:
        client.close()  # mid-transaction: never reused, and no final dot goes out
        raise
    return refused, done.message
