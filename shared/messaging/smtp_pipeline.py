"""One message on an open connection with SMTP PIPELINING (RFC 2920): ``MAIL``, ``RCPT`` and
``DATA`` leave in one write and their replies are read together, then the content goes after
``before_data``. Two round trips per message instead of four (``MAIL``, ``RCPT``, ``DATA``, the
content), and no address parsing per message: the envelope addresses are checked by a pattern.

The content's final dot is the irreversible step: ``before_data`` is awaited once the server
answered ``354`` to ``DATA``, just before the content. When it raises, or any reply is a
refusal, the connection is closed without the final dot: the server discards the transaction,
nothing is delivered (the caller never reuses that connection).

aiosmtplib reads one reply per command; replies that arrived together stay in its protocol's
buffer until the next read, so they are taken from there (``_buffered_reply``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence

import aiosmtplib
from aiosmtplib.protocol import SMTPProtocol

# A plain addr-spec: no control character, space, quote, angle bracket or comma (anything else
# takes aiosmtplib's own path, which parses and refuses what cannot go on a command line).
_PLAIN_ADDRESS = re.compile(r"[!#-'*+\-./0-9=?A-Z^-~]+@[A-Za-z0-9.\-\[\]:]+")
_LONE_LINE_END = re.compile(rb"\r(?!\n)|(?<!\r)\n")
_LEADING_DOT = re.compile(rb"(?m)^\.")

Reply = aiosmtplib.SMTPResponse


def can_pipeline(client: aiosmtplib.SMTP, sender: str, recipients: Sequence[str]) -> bool:
    """Whether this message may go pipelined on ``client``: the server said PIPELINING (to an
    EHLO already sent on this connection) and every envelope address is a plain addr-spec."""
    if client.last_ehlo_response is None or not client.supports_extension("pipelining"):
        return False
    return bool(recipients) and all(
        _PLAIN_ADDRESS.fullmatch(address) for address in (sender, *recipients)
    )


def _buffered_reply(protocol: SMTPProtocol) -> Reply | None:
    """A complete reply already received after the one last read, if any."""
    return protocol._read_response_from_buffer()  # private: see the module's docstring


async def _reply(protocol: SMTPProtocol, limit_s: float | None) -> Reply:
    return _buffered_reply(protocol) or await protocol.read_response(timeout=limit_s)


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
    normalized = _LONE_LINE_END.sub(b"\r\n", data)
    if not normalized.endswith(b"\r\n"):
        normalized += b"\r\n"
    size = f" SIZE={len(normalized)}" if client.supports_extension("size") else ""
    content = _LEADING_DOT.sub(b"..", normalized)
    commands = [f"MAIL FROM:<{sender}>{size}\r\n"]
    commands += [f"RCPT TO:<{recipient}>\r\n" for recipient in recipients]
    commands.append("DATA\r\n")
    try:
        protocol.write("".join(commands).encode("ascii"))
        mail = await _reply(protocol, limit_s)
        if mail.code != 250:
            raise aiosmtplib.SMTPSenderRefused(mail.code, mail.message, sender)
        refused: dict[str, Reply] = {}
        for recipient in recipients:
            reply = await _reply(protocol, limit_s)
            if reply.code not in (250, 251):
                refused[recipient] = reply
        if len(refused) == len(recipients):
            raise aiosmtplib.SMTPRecipientsRefused(
                [
                    aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, recipient)
                    for recipient, reply in refused.items()
                ]
            )
        start = await _reply(protocol, limit_s)
        if start.code != 354:
            raise aiosmtplib.SMTPDataError(start.code, start.message)
        if before_data is not None:
            await before_data()
        protocol.write(content + b".\r\n")
        done = await _reply(protocol, limit_s)
        if done.code != 250:
            raise aiosmtplib.SMTPDataError(done.code, done.message)
    except BaseException:
        client.close()  # mid-transaction: never reused, and no final dot goes out
        raise
    return refused, done.message
