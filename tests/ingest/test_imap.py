"""The IMAP poller against a real Dovecot on 127.0.0.1 (``scripts/imap.sh start``).

These tests do not skip: when the server is unreachable they fail, naming the script to run.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aioimaplib
import pytest
from sqlalchemy import func, select

from ingest.imap.poller import ImapPoller
from ingest.models import Lead
from tests.ingest.conftest import IngestFactory, outbox_count
from tests.ingest.corpus import FIXTURES
from tests.support.harness import RunningService, eventually

pytestmark = pytest.mark.imap

HOST = os.environ.get("TEST_IMAP_HOST", "127.0.0.1")
PORT = int(os.environ.get("TEST_IMAP_PORT", "10143"))
USER = os.environ.get("TEST_IMAP_USER", "ingest")
PASSWORD = os.environ.get("TEST_IMAP_PASSWORD", "ingest-test")


@dataclass
class Mailbox:
    client: Any
    inbox: str
    processed: str

    def settings(self) -> dict[str, Any]:
        return {
            "imap_host": HOST,
            "imap_port": PORT,
            "imap_ssl": False,
            "imap_user": USER,
            "imap_password": PASSWORD,
            "imap_mailboxes": [self.inbox],
            "imap_processed_mailbox": self.processed,
            "imap_poll_interval_s": 0.05,
        }

    async def append(self, *names: str) -> None:
        for name in names:
            raw = (FIXTURES / "email" / name).read_bytes()
            response = await self.client.append(raw, mailbox=self.inbox)
            assert response.result == "OK", response

    async def count(self, mailbox: str) -> int:
        response = await self.client.status(mailbox, "(MESSAGES)")
        assert response.result == "OK", response
        text = b" ".join(line for line in response.lines if isinstance(line, bytes)).decode()
        return int(text.split("MESSAGES", 1)[1].strip(" ()").split()[0].rstrip(")"))


@pytest.fixture
async def mailbox() -> AsyncIterator[Mailbox]:
    """Two fresh folders of the test user. Fails (never skips) without a reachable server."""
    try:
        socket.create_connection((HOST, PORT), timeout=3).close()
    except OSError as exc:
        pytest.fail(
            f"IMAP server unreachable at {HOST}:{PORT} ({type(exc).__name__}): "
            "run scripts/imap.sh start"
        )
    client = aioimaplib.IMAP4(host=HOST, port=PORT)
    await client.wait_hello_from_server()
    assert (await client.login(USER, PASSWORD)).result == "OK"
    name = f"t{uuid.uuid4().hex[:10]}"
    box = Mailbox(client, inbox=name, processed=f"{name}-done")
    assert (await client.create(box.inbox)).result == "OK"
    try:
        yield box
    finally:
        for folder in (box.inbox, box.processed):
            await client.delete(folder)
        await client.logout()


def _poller(service: RunningService) -> ImapPoller:
    return ImapPoller(service.app.state.runtime)


async def _leads(service: RunningService) -> int:
    async with service.app.state.runtime.session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(Lead)) or 0)


async def test_poller_takes_in_every_message_and_moves_it(
    ingest_service: IngestFactory, mailbox: Mailbox
) -> None:
    await mailbox.append(
        "leboncoin_form_html_qp.eml",
        "lacentrale_text_relay.eml",
        "ignored_newsletter.eml",
        "broken_no_contact.eml",
    )
    async with ingest_service(**mailbox.settings()) as service:
        poller = _poller(service)
        try:
            await poller.step()
        finally:
            await poller.close()
        assert await mailbox.count(mailbox.inbox) == 0
        assert await mailbox.count(mailbox.processed) == 4
        assert await _leads(service) == 2
        assert await outbox_count(service) == 2
        quarantined = (await service.client.get("/v1/quarantine")).json()["items"]
        assert [item["channel"] for item in quarantined] == ["imap"]
        ignored = (await service.client.get("/v1/ignored")).json()["items"]
        assert [item["reason"] for item in ignored] == ["newsletter"]


async def test_a_crash_before_the_move_loses_nothing_and_duplicates_nothing(
    ingest_service: IngestFactory, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    await mailbox.append("leboncoin_form_html_qp.eml", "lacentrale_vitrine_html.eml")
    async with ingest_service(**mailbox.settings()) as service:
        crashing = _poller(service)
        original = aioimaplib.IMAP4.uid

        async def dies_on_move(self: Any, command: str, *args: str) -> Any:
            if command == "move":
                raise ConnectionResetError("the process died here")
            return await original(self, command, *args)

        monkeypatch.setattr(aioimaplib.IMAP4, "uid", dies_on_move)
        with pytest.raises(ConnectionResetError):
            await crashing.step()
        await crashing.close()
        monkeypatch.undo()
        # The first message was committed, then the process "died": it is still in the inbox.
        assert await mailbox.count(mailbox.inbox) == 2
        assert await _leads(service) == 1

        restarted = _poller(service)
        try:
            await restarted.step()
        finally:
            await restarted.close()
        assert await mailbox.count(mailbox.inbox) == 0
        assert await mailbox.count(mailbox.processed) == 2
        assert await _leads(service) == 2
        assert await outbox_count(service) == 2


async def test_worker_polls_the_mailbox(ingest_service: IngestFactory, mailbox: Mailbox) -> None:
    async with ingest_service(worker=True, **mailbox.settings()) as service:
        await mailbox.append("generic_site_form.eml")

        async def taken() -> int:
            return await _leads(service)

        assert await eventually(taken) == 1
        assert await eventually(lambda: _moved(mailbox)) == 1


async def _moved(mailbox: Mailbox) -> int:
    return await mailbox.count(mailbox.processed)
