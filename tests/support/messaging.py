"""A small test service for the messaging tests: infrastructure tables plus an ``effect`` table
that handlers write to, on either backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import Column, Integer, String, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.bus import Bus, build_bus
from shared.bus.factory import topic_specs
from shared.db import InfraTables, add_infra_tables, create_engine, make_metadata
from shared.db.session import SessionFactory, make_session_factory
from shared.events import Envelope
from shared.settings import ServiceSettings

metadata = make_metadata()
infra: InfraTables = add_infra_tables(metadata)
effect = Table(
    "effect",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("label", String(64), nullable=False),
)


class MessagingSettings(ServiceSettings):
    service_name = "messaging-test"


@dataclass
class Harness:
    settings: ServiceSettings
    engine: AsyncEngine
    sessions: SessionFactory
    bus: Bus

    async def effects(self) -> list[str]:
        async with self.sessions() as session:
            return list((await session.scalars(select(effect.c.label).order_by(effect.c.id))).all())

    async def count(self, table: Table) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def record_effect(session: AsyncSession, envelope: Envelope) -> None:
    if envelope.data.get("poison"):
        raise ValueError("this event always fails")
    await session.execute(
        insert(effect).values(event_id=envelope.id, label=str(envelope.data["label"]))
    )


@asynccontextmanager
async def messaging_harness(settings: ServiceSettings) -> AsyncIterator[Harness]:
    engine = create_engine(settings.resolved_database_url())
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    bus = build_bus(settings)
    await bus.start()
    await bus.ensure_topics(topic_specs(settings))
    try:
        yield Harness(settings, engine, make_session_factory(engine), bus)
    finally:
        await bus.stop()
        await engine.dispose()
