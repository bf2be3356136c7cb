"""Pick the bus backend from settings."""

from __future__ import annotations

from shared.bus.embedded import EmbeddedBus
from shared.bus.kafka import KafkaBus
from shared.bus.protocol import Bus, TopicSpec
from shared.events.catalogue import PERSONAL_DATA_TOPICS, Topics, all_topics
from shared.settings import ServiceSettings


def build_bus(settings: ServiceSettings) -> Bus:
    if settings.bus == "kafka":
        return KafkaBus(
            settings.kafka_bootstrap_servers,
            prefix=settings.topic_prefix,
            client_id=settings.service_name,
            publish_timeout_s=settings.kafka_publish_timeout_s,
        )
    return EmbeddedBus(settings.embedded_bus_path, prefix=settings.topic_prefix)


def topic_specs(settings: ServiceSettings) -> list[TopicSpec]:
    """Every catalogue topic; personal-data topics and their DLQs get the bounded retention."""
    specs = []
    for name in all_topics():
        base = name.removesuffix(".dlq")
        retention = settings.personal_data_retention_ms if base in PERSONAL_DATA_TOPICS else None
        partitions = 1 if name == Topics.dlq(base) else settings.topic_partitions
        specs.append(TopicSpec(name=name, partitions=partitions, retention_ms=retention))
    return specs
