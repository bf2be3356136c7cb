"""Messages and their bodies are personal data: qualify's export carries them, its erasure
deletes them (the opt-out hashes stay, as the do-not-contact list does), and no log line of the
messaging code carries an address, a number, a name or a body."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from qualify.messages.handlers import record_reply
from qualify.models import metadata
from shared.db.session import session_scope
from shared.events.payloads import LeadMessageBouncedV1, LeadMessageReceivedV1
from shared.events.privacy import ErasureRequestedV1, ExportRequestedV1
from shared.privacy import lead_scoped_eraser, lead_scoped_exporter
from tests.qualify.conftest import QualifyApi, open_api, qualify_settings
from tests.qualify.test_api import claimed
from tests.qualify.test_conversation import deliver
from tests.support.clock import Clock
from tests.support.logs import CapturedLogs
from tests.support.pii_scan import database_hits

KEY = b"dev-only-privacy-key"
SECRETS = [
    "Hélène",
    "Gaël",
    "helene.gael@example.fr",
    "+33698765432",
    "33698765432",
    "garde-meuble",
    "Rappelez-moi",
]


@pytest.fixture
async def api(tmp_path: Path, clock: Clock) -> AsyncIterator[QualifyApi]:
    settings = qualify_settings(f"sqlite+aiosqlite:///{tmp_path / 'qualify.db'}", tmp_path)
    async with open_api(settings, clock) as api:
        yield api


async def a_conversation(api: QualifyApi) -> str:
    lead = await api.add_lead(
        first_name="Hélène",
        email="helene.gael@example.fr",
        phone="+33698765432",
        first_answer=True,
    )
    async with session_scope(api.runtime.session_factory) as session:
        await record_reply(
            session,
            LeadMessageReceivedV1(
                lead_id=lead,
                message_id="in-1",
                channel="sms",
                received_at=api.clock.now,
                sender="+33698765432",
                text="Rappelez-moi demain, je suis au garde-meuble. STOP",
                stop_request=False,
            ),
            key=KEY,
            outbox=api.runtime.outbox,
            now=api.clock.now,
        )
    alice = await claimed(api, "alice", lead)
    response = await alice.post(
        f"/v1/leads/{lead}/messages",
        json={"channel": "email", "text": "Bien noté Hélène, à demain au garde-meuble."},
    )
    assert response.status_code == 201, response.text
    return lead


async def test_export_carries_the_messages_and_erasure_deletes_them(
    api: QualifyApi, tmp_path: Path
) -> None:
    lead = await a_conversation(api)
    async with session_scope(api.runtime.session_factory) as session:
        share = await lead_scoped_exporter(metadata)(
            session,
            ExportRequestedV1(
                request_id="r1", client_id="c1", lead_ids=[lead], requested_at=api.clock.now
            ),
        )
    assert len(share["outgoing_message"]) == 3  # first answer e-mail and SMS, the operator's
    assert share["incoming_message"][0]["text"].startswith("Rappelez-moi")
    assert any("garde-meuble" in row["text"] for row in share["outgoing_message"])

    # The STOP opt-out of another reply leaves a hash that must survive erasure.
    await deliver(
        api,
        "lead.message-received.v1",
        LeadMessageReceivedV1(
            lead_id=lead,
            message_id="in-2",
            channel="sms",
            received_at=api.clock.now,
            sender="+33698765432",
            text="STOP",
            stop_request=True,
        ),
    )
    async with session_scope(api.runtime.session_factory) as session:
        erased = await lead_scoped_eraser(metadata)(
            session,
            ErasureRequestedV1(
                request_id="r2", client_id="c1", lead_ids=[lead], requested_at=api.clock.now
            ),
        )
    assert erased["outgoing_message"] == 3
    assert erased["incoming_message"] == 2
    url = f"sqlite+aiosqlite:///{tmp_path / 'qualify.db'}"
    assert await database_hits(url, SECRETS) == {}
    assert "blocked_contact" not in erased  # keyed hashes only: the opt-out stays honoured


async def test_no_personal_data_in_the_logs(
    api: QualifyApi, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = CapturedLogs(capsys)
    lead = await a_conversation(api)
    await deliver(
        api,
        "lead.message-bounced.v1",
        LeadMessageBouncedV1(
            lead_id=lead, message_id="unknown", bounce="hard", bounced_at=api.clock.now
        ),
    )
    events = logs.events
    names = {event["event"] for event in events}
    assert {"first_answer.queued", "message.reply_recorded", "attempt.recorded"} <= names
    text = str(events)
    for secret in SECRETS:
        assert secret.casefold() not in text.casefold(), secret
