"""The worker caches the routing rules and the first answer's templates (qualify.config_cache)
behind ``config_version``, which triggers bump with every change of either table: a change an
admin makes through the API (another runtime: its own engine and connections, as another
process) applies to the worker's very next lead, and a lead that follows no change reads
neither table. On both backends."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event as sa_event, select

from qualify.messages.compose import Composer
from qualify.messages.loops import FirstAnswerStep
from qualify.models import OutgoingMessage, QueuedLead, infra
from qualify.policy import Policy
from qualify.queue.handlers import lead_received_handler
from qualify.settings import QualifySettings
from shared.db.session import session_scope
from shared.events import Envelope
from shared.events.payloads import ContactV1, LeadReceivedV1, VehicleV1
from shared.metrics import ServiceMetrics
from shared.runtime import Runtime
from tests.qualify.conftest import QualifyApi, open_api, qualify_settings
from tests.support.clock import Clock


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> QualifySettings:
    return qualify_settings(database_url, tmp_path, message_dealer_name="Garage Dupont")


@pytest.fixture
async def api(settings: QualifySettings) -> AsyncIterator[QualifyApi]:
    async with open_api(settings, Clock()) as api:
        yield api


class Worker:
    """The worker's ``lead.received.v1`` handler on a runtime of its own (one policy: one
    cache), and the statements its engine ran."""

    def __init__(self, runtime: Runtime[QualifySettings]) -> None:
        self.runtime = runtime
        policy = Policy.from_settings(runtime.settings)
        self.handler = lead_received_handler(
            policy,
            runtime.clock,
            runtime.outbox,
            FirstAnswerStep(Composer(runtime.settings, policy)),
        )
        self.statements: list[str] = []

    async def lead(self, *, source: str = "leboncoin", ad_ref: str = "AD-1") -> str:
        lead_id = str(uuid.uuid4())
        event = LeadReceivedV1.model_validate(
            {
                "lead_id": lead_id,
                "kind": "enquiry",
                "source": source,
                "source_ref": f"ref-{lead_id}",
                "received_at": self.runtime.clock(),
                "contact": ContactV1(
                    first_name="Camille",
                    full_name="Camille Durand",
                    phone="+33612345678",
                    email="camille@example.fr",
                ),
                "vehicle": VehicleV1(ad_ref=ad_ref),
            }
        )
        envelope = Envelope(
            source="/test",
            type="lead.received.v1",
            subject=lead_id,
            data=event.model_dump(mode="json"),
        )
        async with session_scope(self.runtime.session_factory) as session:
            await self.handler(session, envelope)
        return lead_id

    @contextmanager
    def counted(self) -> Iterator[list[str]]:
        self.statements = []

        def record(*args: Any) -> None:
            self.statements.append(args[2])

        engine = self.runtime.engine.sync_engine
        sa_event.listen(engine, "before_cursor_execute", record)
        try:
            yield self.statements
        finally:
            sa_event.remove(engine, "before_cursor_execute", record)

    async def path(self, lead_id: str) -> tuple[str | None, str | None]:
        async with session_scope(self.runtime.session_factory) as session:
            lead = await session.get(QueuedLead, lead_id)
            assert lead is not None
            return lead.routing_path, lead.site

    async def sms(self, lead_id: str) -> str:
        async with session_scope(self.runtime.session_factory) as session:
            text = await session.scalar(
                select(OutgoingMessage.text).where(
                    OutgoingMessage.lead_id == lead_id, OutgoingMessage.channel == "sms"
                )
            )
        assert text is not None
        return text.split("\n")[0]


@pytest.fixture
async def worker(settings: QualifySettings, api: QualifyApi) -> AsyncIterator[Worker]:
    runtime = await Runtime.open(
        settings, infra, ServiceMetrics("qualify"), role="worker", clock=api.clock
    )
    try:
        yield Worker(runtime)
    finally:
        await runtime.close()


def reads(statements: list[str], table: str) -> bool:
    return any(f"FROM {table}" in statement for statement in statements)


async def test_a_rule_changed_through_the_api_routes_the_next_lead(
    api: QualifyApi, worker: Worker
) -> None:
    admin = await api.client("root", roles=("admin",))
    assert (await worker.path(await worker.lead()))[0] == "qualify"  # fills the cache
    with worker.counted() as statements:
        assert (await worker.path(await worker.lead()))[0] == "qualify"
    assert not reads(statements, "routing_rule")  # cached: no change since

    response = await admin.put("/v1/routing/sources/leboncoin", json={"path": "direct"})
    assert response.status_code == 200, response.text
    with worker.counted() as statements:
        assert (await worker.path(await worker.lead()))[0] == "direct"  # the very next lead
    assert reads(statements, "routing_rule")
    response = await admin.put(
        "/v1/routing/sites/lyon", json={"path": "qualify", "ad_ref_prefixes": ["LYO-"]}
    )
    assert response.status_code == 200, response.text
    assert await worker.path(await worker.lead(ad_ref="LYO-9")) == ("qualify", "lyon")
    assert (await worker.path(await worker.lead()))[0] == "direct"
    assert (await admin.delete("/v1/routing/sources/leboncoin")).status_code == 204
    assert (await worker.path(await worker.lead()))[0] == "qualify"


async def test_a_template_changed_through_the_api_answers_the_next_lead(
    api: QualifyApi, worker: Worker
) -> None:
    admin = await api.client("root", roles=("admin",))
    default = await worker.sms(await worker.lead())  # fills the cache
    with worker.counted() as statements:
        assert await worker.sms(await worker.lead()) == default
    assert not reads(statements, "message_template")

    response = await admin.post(
        "/v1/message-templates",
        json={"kind": "first_answer", "channel": "sms", "text": "Bonjour {{first_name}}"},
    )
    assert response.status_code == 201, response.text
    template = response.json()["id"]
    assert await worker.sms(await worker.lead()) == "Bonjour Camille"
    # A more specific one, for another source only, and a change of the content.
    response = await admin.post(
        "/v1/message-templates",
        json={"kind": "first_answer", "channel": "sms", "source": "facebook", "text": "Fb"},
    )
    assert response.status_code == 201, response.text
    assert await worker.sms(await worker.lead(source="facebook")) == "Fb"
    assert await worker.sms(await worker.lead()) == "Bonjour Camille"
    response = await admin.put(
        f"/v1/message-templates/{template}", json={"text": "Salut {{first_name}}"}
    )
    assert response.status_code == 200, response.text
    assert await worker.sms(await worker.lead()) == "Salut Camille"
    assert (await admin.delete(f"/v1/message-templates/{template}")).status_code == 204
    assert await worker.sms(await worker.lead()) == default
