"""Poll one mailbox: fetch each message with ``BODY.PEEK[]``, take it in (its own committed
transaction), then move it to the processed folder. A crash between the commit and the move
re-reads the message on the next pass: the replay is recognised by its bytes (same answer, no
new lead), then moved. Nothing is flagged or moved before it is committed."""

from __future__ import annotations

import re
import ssl

import aioimaplib
import structlog

from ingest.intake.metrics import count_input
from ingest.settings import IngestSettings
from ingest.sources.email.service import take_email
from shared.db.session import session_scope
from shared.messaging.lead_tokens import LeadTokens
from shared.redact import SafeError, safe_error_text
from shared.runtime import Runtime

log = structlog.get_logger(__name__)

_FETCH_HEAD = re.compile(rb"^\d+ FETCH \(.*UID (\d+)")


class ImapError(SafeError):
    """The server refused a command (the text names the command only)."""


class ImapPoller:
    def __init__(self, runtime: Runtime[IngestSettings]) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.tokens = LeadTokens(runtime.settings.lead_token_key)
        self._client: aioimaplib.IMAP4 | None = None

    async def _connect(self) -> aioimaplib.IMAP4:
        settings = self.settings
        assert settings.imap_host is not None
        client: aioimaplib.IMAP4
        if settings.imap_ssl:
            client = aioimaplib.IMAP4_SSL(
                host=settings.imap_host,
                port=settings.imap_port,
                ssl_context=ssl.create_default_context(),
            )
        else:
            client = aioimaplib.IMAP4(host=settings.imap_host, port=settings.imap_port)
        await client.wait_hello_from_server()
        password = settings.imap_password.get_secret_value() if settings.imap_password else ""
        await self._ok(client.login(settings.imap_user, password), "login")
        await self._ok(client.create(settings.imap_processed_mailbox), "create", tolerate=True)
        return client

    @staticmethod
    async def _ok(call: object, name: str, *, tolerate: bool = False) -> aioimaplib.Response:
        response = await call  # type: ignore[misc]
        assert isinstance(response, aioimaplib.Response)
        if response.result != "OK" and not tolerate:
            raise ImapError(f"IMAP {name} answered {response.result}")
        return response

    async def close(self) -> None:
        if self._client is not None:
            try:
                await self._client.logout()
            except Exception as exc:
                log.info("imap.logout_failed", error=safe_error_text(exc))
            self._client = None

    async def step(self) -> float:
        """One pass over the mailbox; returns the pause before the next."""
        try:
            if self._client is None:
                self._client = await self._connect()
            processed = await self.poll_once(self._client)
        except Exception:
            await self.close()
            raise
        return (
            0.0
            if processed >= self.settings.imap_batch_size
            else self.settings.imap_poll_interval_s
        )

    async def poll_once(self, client: aioimaplib.IMAP4) -> int:
        """One batch from each configured folder; returns the largest batch taken."""
        taken = 0
        for mailbox in self.settings.imap_mailboxes:
            await self._ok(client.select(mailbox), "select")
            taken = max(taken, await self._poll_selected(client))
        return taken

    async def _poll_selected(self, client: aioimaplib.IMAP4) -> int:
        search = await self._ok(client.uid_search("ALL", charset=None), "search")
        uids = [uid for line in search.lines[:-1] for uid in line.split()]
        uids = [uid.decode() for uid in uids if uid.isdigit()][: self.settings.imap_batch_size]
        for uid in uids:
            fetched = await self._ok(client.uid("fetch", uid, "(BODY.PEEK[])"), "fetch")
            body = _message_bytes(fetched.lines)
            if body is None:
                log.warning("imap.message_without_body", uid=uid)
                continue
            runtime = self.runtime
            async with session_scope(runtime.session_factory) as session:
                answer = await take_email(
                    session,
                    body,
                    channel="imap",
                    tokens=self.tokens,
                    limits=self.settings.mime_limits,
                    outbox=runtime.outbox,
                    now=runtime.clock(),
                )
            count_input(runtime.metrics, "imap", answer.status)
            await self._ok(client.uid("move", uid, self.settings.imap_processed_mailbox), "move")
            log.info("imap.message_taken", uid=uid, status=answer.status, id=answer.id)
        return len(uids)


def _message_bytes(lines: list[bytes | bytearray]) -> bytes | None:
    """The literal that follows the ``* n FETCH (UID u BODY[] {size}`` line."""
    for index, line in enumerate(lines):
        if isinstance(line, bytes | bytearray) and b"BODY[]" in line and index + 1 < len(lines):
            literal = lines[index + 1]
            return bytes(literal)
    return None
