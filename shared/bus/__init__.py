"""The event bus: one interface, two backends (Apache Kafka and an embedded SQLite log)."""

from shared.bus.factory import build_bus
from shared.bus.protocol import Bus, BusUnavailable, Consumer, Record, TopicSpec

__all__ = ["Bus", "BusUnavailable", "Consumer", "Record", "TopicSpec", "build_bus"]
