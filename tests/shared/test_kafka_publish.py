"""The Kafka producer as the outbox relay uses it: a batch is enqueued whole and then awaited, so
the producer does not linger before sending it, and a publish costs no task of its own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Coroutine, Generator
from typing import Any

import pytest

from shared.bus.kafka import KafkaBus
from shared.bus.protocol import TopicSpec
from tests.support.infra import require_kafka

pytestmark = pytest.mark.kafka

TOPIC = "vo.publish-test"
RECORD = (TOPIC, b"lead-1", b"{}", [("ce_type", b"test.v1")])


@pytest.fixture
async def bus() -> AsyncIterator[KafkaBus]:
    bus = KafkaBus(
        await require_kafka(), prefix=f"t{uuid.uuid4().hex[:10]}.", client_id="publish-test"
    )
    try:
        await bus.ensure_topics([TopicSpec(TOPIC, 1)])
        await bus.publish_many([RECORD])  # the producer started, the metadata known
        yield bus
    finally:
        await bus.stop()


async def test_a_lone_event_is_sent_without_lingering(bus: KafkaBus) -> None:
    """The producer does not hold a batch back (main's lingered 5 ms on every publish): the relay
    enqueues its whole batch before it awaits the acks. Checked on the producer's accumulator, not
    by timing a publish (a loaded machine makes any time bound flaky)."""
    producer = bus._producer  # started by the fixture's first publish
    assert producer is not None
    assert producer._message_accumulator._linger_time == 0
    await bus.publish_many([RECORD])  # and a lone event is still acknowledged


async def test_a_publish_starts_no_task_of_its_own(bus: KafkaBus) -> None:
    """The publish timeout is a scope around the sends, not ``wait_for`` (a task per publish)."""
    loop = asyncio.get_running_loop()
    started: list[str] = []
    default = loop.get_task_factory()

    def counting(
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
        **kwargs: Any,
    ) -> asyncio.Future[Any]:
        started.append(getattr(coro, "__qualname__", type(coro).__name__))
        if default is not None:
            return default(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting)
    try:
        await bus.publish_many([RECORD])
        await bus.publish_many([RECORD, RECORD, RECORD])
    finally:
        loop.set_task_factory(default)
    assert not [name for name in started if name.startswith("KafkaBus.")], started
