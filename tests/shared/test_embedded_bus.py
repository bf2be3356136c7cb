"""The embedded bus keeps Kafka's semantics: topics, keys, groups, committed offsets."""

from __future__ import annotations

from pathlib import Path

from shared.bus.embedded import EmbeddedBus


async def test_groups_read_independently_and_resume_from_commits(tmp_path: Path) -> None:
    bus = EmbeddedBus(tmp_path / "bus.db", prefix="p.")
    await bus.start()
    try:
        for n in range(5):
            await bus.publish(
                "a", key=f"k{n}".encode(), value=str(n).encode(), headers=[("h", b"v")]
            )
        await bus.publish("b", key=None, value=b"other", headers=[])

        first = bus.consumer(group_id="g1", topics=["a"])
        await first.start()
        records = await first.poll(timeout_s=1, max_records=3)
        assert [r.value for r in records] == [b"0", b"1", b"2"]
        assert records[0].key == b"k0"
        assert records[0].headers == [("h", b"v")]
        assert {r.topic for r in records} == {"a"}
        await first.commit({("a", 0): records[1].offset + 1})  # only the first two are done
        await first.stop()

        resumed = bus.consumer(group_id="g1", topics=["a"])
        await resumed.start()
        again = await resumed.poll(timeout_s=1, max_records=10)
        assert [r.value for r in again] == [b"2", b"3", b"4"]
        await resumed.seek("a", 0, again[0].offset)
        assert [r.value for r in await resumed.poll(timeout_s=1, max_records=1)] == [b"2"]
        await resumed.stop()

        other_group = bus.consumer(group_id="g2", topics=["a", "b"])
        await other_group.start()
        everything = await other_group.poll(timeout_s=1, max_records=10)
        assert [r.value for r in everything] == [b"0", b"1", b"2", b"3", b"4", b"other"]
        assert await other_group.poll(timeout_s=0.1, max_records=10) == []
        await other_group.stop()
    finally:
        await bus.stop()


async def test_two_bus_instances_share_one_file(tmp_path: Path) -> None:
    writer, reader = EmbeddedBus(tmp_path / "bus.db"), EmbeddedBus(tmp_path / "bus.db")
    await writer.start()
    await reader.start()
    try:
        consumer = reader.consumer(group_id="g", topics=["t"])
        await consumer.start()
        await writer.publish("t", key=b"k", value=b"v", headers=[])
        records = await consumer.poll(timeout_s=2, max_records=10)
        assert [r.value for r in records] == [b"v"]
        await consumer.stop()
    finally:
        await writer.stop()
        await reader.stop()
