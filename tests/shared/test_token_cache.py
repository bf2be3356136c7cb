"""The token cache answers within its TTL, forgets after it, and stays bounded."""

from __future__ import annotations

import time

from shared.auth import Principal
from shared.token_cache import TokenCache

ALICE = Principal(token_id="t1", name="alice", roles=frozenset({"operator"}))


def test_hit_within_ttl_then_expiry() -> None:
    cache = TokenCache(ttl_s=0.05)
    assert cache.get("vo_a") is None
    cache.put("vo_a", ALICE)
    assert cache.get("vo_a") == ALICE
    assert cache.get("vo_b") is None
    time.sleep(0.06)
    assert cache.get("vo_a") is None


def test_bounded_oldest_first() -> None:
    cache = TokenCache(ttl_s=60, max_entries=2)
    for token in ("vo_1", "vo_2", "vo_3"):
        cache.put(token, ALICE)
    assert cache.get("vo_1") is None
    assert cache.get("vo_2") == ALICE
    assert cache.get("vo_3") == ALICE
