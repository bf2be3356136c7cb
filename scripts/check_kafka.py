#!/usr/bin/env python3
"""Kafka readiness check: a real round trip through the broker with aiokafka.

Creates the topic ``_readiness`` (1 partition, RF 1) if needed, produces one
message with a unique value, and consumes it back with a consumer group.
Retries until it succeeds or the timeout expires.

Exit status: 0 when the round trip worked, 1 otherwise.
Used by scripts/infra.sh; can be run by hand:

    python scripts/check_kafka.py --bootstrap 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

TOPIC = "_readiness"
# Kafka protocol error codes accepted from CreateTopics
_NO_ERROR = 0
_TOPIC_ALREADY_EXISTS = 36


class NotReadyError(Exception):
    """The broker answered but the round trip is not possible yet."""


async def _ensure_topic(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        resp = await admin.create_topics(
            [NewTopic(name=TOPIC, num_partitions=1, replication_factor=1)], timeout_ms=10_000
        )
        for item in resp.topic_errors:
            name, code = item[0], item[1]
            if code not in (_NO_ERROR, _TOPIC_ALREADY_EXISTS):
                raise NotReadyError(f"CreateTopics({name}) failed with error code {code}")
    finally:
        await admin.close()


async def _produce(bootstrap: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=10_000)
    await producer.start()
    try:
        await producer.send_and_wait(TOPIC, value=value, key=b"readiness")
    finally:
        await producer.stop()


async def _consume(bootstrap: str, value: bytes, deadline: float) -> None:
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        # a fresh group each run: no committed offset, so read from the start and
        # look for our unique value (the topic lives only as long as the broker's data dir)
        group_id=f"_readiness-{uuid.uuid4().hex[:12]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1_000)
            for records in batches.values():
                if any(r.value == value for r in records):
                    await consumer.commit()
                    return
        raise NotReadyError("produced message was not consumed back before the deadline")
    finally:
        await consumer.stop()


async def _round_trip(bootstrap: str, deadline: float) -> None:
    await _ensure_topic(bootstrap)
    value = f"readiness-{uuid.uuid4()}".encode()
    await _produce(bootstrap, value)
    await _consume(bootstrap, value, deadline)


async def check(bootstrap: str, budget_s: float, quiet: bool) -> bool:
    deadline = time.monotonic() + budget_s
    attempt = 0
    last_error = "no attempt made"
    while time.monotonic() < deadline:
        attempt += 1
        remaining = deadline - time.monotonic()
        try:
            await asyncio.wait_for(_round_trip(bootstrap, deadline), timeout=remaining)
        except Exception as exc:  # any failure means "not ready yet": retry until the deadline
            last_error = f"{type(exc).__name__}: {exc}"
            if not quiet:
                print(f"check_kafka: attempt {attempt} failed: {last_error}", file=sys.stderr)
            await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        else:
            return True
    print(f"check_kafka: not ready after {budget_s:.0f}s: {last_error}", file=sys.stderr)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="host:port of the broker")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before giving up")
    parser.add_argument("--quiet", action="store_true", help="do not print failed attempts")
    args = parser.parse_args()
    # aiokafka logs expected start-up hiccups (e.g. GroupCoordinatorNotAvailable) at
    # WARNING/ERROR while it retries; our own retry loop reports what matters.
    logging.basicConfig(level=logging.WARNING, format="check_kafka: %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL if args.quiet else logging.WARNING)
    ok = asyncio.run(check(args.bootstrap, args.timeout, args.quiet))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
