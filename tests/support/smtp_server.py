"""A loopback SMTP server speaking just enough of the protocol for aiosmtplib (EHLO, MAIL, RCPT,
DATA, RSET, NOOP, QUIT; PIPELINING when told), that counts connections and messages and can
misbehave on cue: answer the next MAIL with ``421`` and hang up (an idle connection it timed out),
hang up at DATA or after the content, refuse recipients. For the sender's connection handling;
the real round trip is Postfix's (``tests/shared/messaging/test_mail_roundtrip.py``)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from types import TracebackType


@dataclass
class FakeSmtpServer:
    connections: int = 0
    quits: int = 0
    messages: list[bytes] = field(default_factory=list)
    # Cues, each for the next time it applies (then cleared).
    timeout_next_mail: bool = False  # "421 idle timeout" at MAIL, then hang up
    hang_up_at_data: bool = False  # hang up on DATA, before any reply
    refuse_rcpt: int | None = None  # reply code to RCPT (e.g. 550), for every message
    hang_up_after_content: bool = False  # hang up once the content's final dot came, no reply
    # Advertise PIPELINING (RFC 2920): a client may then send MAIL, RCPT and DATA in one go.
    pipelining: bool = False
    port: int = 0
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def __aenter__(self) -> FakeSmtpServer:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            await self._converse(reader, writer)
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 fake.test ESMTP\r\n")
        while line := await reader.readline():
            command = line[:4].upper()
            if command == b"EHLO":
                extensions = b"250-PIPELINING\r\n" if self.pipelining else b""
                writer.write(b"250-fake.test\r\n" + extensions + b"250 8BITMIME\r\n")
            elif command == b"HELO":
                writer.write(b"250 fake.test\r\n")
            elif command == b"MAIL":
                if self.timeout_next_mail:
                    self.timeout_next_mail = False
                    writer.write(b"421 4.4.2 fake.test Error: timeout exceeded\r\n")
                    await writer.drain()
                    return
                writer.write(b"250 2.1.0 Ok\r\n")
            elif command == b"RCPT":
                if self.refuse_rcpt is not None:
                    code = self.refuse_rcpt
                    writer.write(f"{code} 5.1.1 <someone@example.fr> User unknown\r\n".encode())
                else:
                    writer.write(b"250 2.1.5 Ok\r\n")
            elif command == b"DATA":
                if self.hang_up_at_data:
                    self.hang_up_at_data = False
                    return
                writer.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                await writer.drain()
                body = bytearray()
                while (chunk := await reader.readline()) != b".\r\n":
                    if not chunk:
                        return  # a hang-up before the final dot: no message, as any server
                    body += chunk
                if self.hang_up_after_content:
                    self.hang_up_after_content = False
                    return  # the client cannot know whether the message was taken
                self.messages.append(bytes(body))
                writer.write(f"250 2.0.0 Ok: queued as Q{len(self.messages)}\r\n".encode())
            elif command in (b"RSET", b"NOOP"):
                writer.write(b"250 2.0.0 Ok\r\n")
            elif command == b"QUIT":
                self.quits += 1
                writer.write(b"221 2.0.0 Bye\r\n")
                await writer.drain()
                return
            else:
                writer.write(b"502 5.5.2 Error: command not recognized\r\n")
            await writer.drain()
