"""Random ids drawn from a pool of ``os.urandom`` bytes: the forms of ``uuid4`` and
``secrets.token_hex``, never the same bytes twice (across refills and threads), a fresh pool in a
forked child."""

from __future__ import annotations

import os
import re
import sys
import threading
import uuid

import pytest

from shared import random_ids


def test_uuid4_text_is_a_canonical_version_4_uuid() -> None:
    for _ in range(1000):
        text = random_ids.uuid4_text()
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == text


def test_random_hex_has_the_size_asked() -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", random_ids.random_hex(16))
    assert re.fullmatch(r"[0-9a-f]{16}", random_ids.random_hex(8))
    assert len(random_ids.random_bytes(10_000)) == 10_000  # more than a pool at once


def test_no_id_twice_across_refills_and_threads() -> None:
    per_thread = 3 * random_ids._POOL_BYTES // 16  # several refills each
    found: list[list[str]] = [[] for _ in range(4)]

    def draw(into: list[str]) -> None:
        into.extend(random_ids.random_hex(16) for _ in range(per_thread))

    threads = [threading.Thread(target=draw, args=(into,)) for into in found]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [value for values in found for value in values]
    assert len(set(everything)) == len(everything) == 4 * per_thread


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_a_forked_child_does_not_reuse_the_parents_pool() -> None:
    random_ids.random_hex(1)  # the parent has a pool with bytes left
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, random_ids.random_bytes(16))
        os._exit(0)
    os.close(write)
    child = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert child != random_ids.random_bytes(16)
