"""Kafka sized for replicas: topics get 12 partitions by default (a consumer group shares its
work among up to 12 replicas); an existing topic with fewer keeps them (adding partitions would
move keys and break a lead's order) and the worker says so; consumer groups carry the topic
prefix, so two systems on one broker never share a group."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from shared.bus.factory import topic_specs
from shared.bus.kafka import KafkaBus
from shared.events import Topics
from shared.events.catalogue import all_topics
from shared.logging import configure_logging
from shared.settings import ServiceSettings
from tests.support.harness import eventually
from tests.support.infra import require_kafka
from tests.support.logs import CapturedLogs

pytestmark = pytest.mark.kafka


class KafkaSettings(ServiceSettings):
    service_name = "scaling-test"


def test_topics_are_sized_for_replicas_by_default() -> None:
    specs = {spec.name: spec.partitions for spec in topic_specs(KafkaSettings())}
    assert specs[Topics.LEADS] == 12
    assert specs[Topics.PRIVACY] == 12
    assert specs[Topics.dlq(Topics.LEADS)] == 1


async def _partitions(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
        return len(described["partitions"])
    finally:
        await admin.close()


async def test_an_existing_topic_keeps_its_partitions_and_the_worker_warns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bootstrap = await require_kafka()
    prefix = f"t{uuid.uuid4().hex[:10]}."
    configure_logging(level="INFO", json=True, service="scaling-test")
    logs = CapturedLogs(capsys)
    small = KafkaSettings(
        kafka_bootstrap_servers=bootstrap, topic_prefix=prefix, topic_partitions=3
    )
    bus = KafkaBus(bootstrap, prefix=prefix, client_id="scaling-test")
    await bus.ensure_topics(topic_specs(small))
    assert await _partitions(bootstrap, f"{prefix}{Topics.LEADS}") == 3
    assert not [e for e in logs.events if e["event"] == "kafka.topic_has_fewer_partitions"]

    await bus.ensure_topics(topic_specs(KafkaSettings(topic_prefix=prefix)))  # 12 wanted
    assert await _partitions(bootstrap, f"{prefix}{Topics.LEADS}") == 3
    warned = {
        event["topic"]: (event["partitions"], event["configured"])
        for event in logs.events
        if event["event"] == "kafka.topic_has_fewer_partitions"
    }
    assert warned == {
        f"{prefix}{topic}": (3, 12) for topic in all_topics() if not topic.endswith(".dlq")
    }


async def test_consumer_groups_carry_the_topic_prefix() -> None:
    bootstrap = await require_kafka()
    prefix = f"t{uuid.uuid4().hex[:10]}."
    bus = KafkaBus(bootstrap, prefix=prefix, client_id="scaling-test")
    await bus.ensure_topics(topic_specs(KafkaSettings(topic_prefix=prefix, topic_partitions=1)))
    consumer = bus.consumer(group_id="crm.leads", topics=[Topics.LEADS])
    await consumer.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await consumer.poll(timeout_s=0.5, max_records=1)

        async def listed() -> bool:
            groups = {group[0] for group in await admin.list_consumer_groups()}
            return f"{prefix}crm.leads" in groups

        await eventually(listed, timeout_s=30)
    finally:
        await admin.close()
        await consumer.stop()
        await bus.stop()
