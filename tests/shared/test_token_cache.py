"""The token cache: answers from memory while its watch vouches nothing changed, forgets
everything when the watch's generation moves, never keeps an answer read before a change, caches
nothing while the watch cannot vouch; bounded and with a TTL as a safety net."""

from __future__ import annotations

from shared.auth import Principal
from shared.token_cache import TokenCache

ALICE = Principal(token_id="t1", name="alice", roles=frozenset({"operator"}))


class FakeWatch:
    def __init__(self) -> None:
        self.current: int | None = 0
        self.bumped = 0

    def generation(self) -> int | None:
        return self.current

    def bump(self) -> None:
        self.bumped += 1
        if self.current is not None:
            self.current += 1

    async def close(self) -> None:
        pass


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_hit_within_ttl_then_expiry() -> None:
    time = FakeTime()
    cache = TokenCache(ttl_s=0.05, monotonic=time)
    assert cache.get("vo_a") is None
    cache.put("vo_a", ALICE, ticket=cache.ticket())
    assert cache.get("vo_a") == ALICE
    assert cache.get("vo_b") is None
    time.now += 0.06
    assert cache.get("vo_a") is None


def test_bounded_oldest_first() -> None:
    cache = TokenCache(ttl_s=60, max_entries=2)
    for token in ("vo_1", "vo_2", "vo_3"):
        cache.put(token, ALICE, ticket=cache.ticket())
    assert cache.get("vo_1") is None
    assert cache.get("vo_2") == ALICE
    assert cache.get("vo_3") == ALICE


def test_a_change_seen_by_the_watch_forgets_everything() -> None:
    watch = FakeWatch()
    cache = TokenCache(ttl_s=3600, watch=watch)
    cache.put("vo_a", ALICE, ticket=cache.ticket())
    cache.put_sign_in("sso-key", None, ticket=cache.ticket())
    assert cache.get("vo_a") == ALICE
    assert cache.sign_in("sso-key") == (True, None)  # "no record" is remembered too
    assert watch.current is not None
    watch.current += 1  # another process revoked a token, or changed a person
    assert cache.get("vo_a") is None
    assert cache.sign_in("sso-key") == (False, None)
    assert len(cache) == 0


def test_an_answer_read_before_a_change_is_not_kept() -> None:
    watch = FakeWatch()
    cache = TokenCache(ttl_s=3600, watch=watch)
    ticket = cache.ticket()  # the lookup starts…
    assert watch.current is not None
    watch.current += 1  # …a revocation commits while it reads…
    cache.put("vo_a", ALICE, ticket=ticket)  # …its (stale) answer is dropped
    assert cache.get("vo_a") is None


def test_nothing_is_cached_while_the_watch_cannot_vouch() -> None:
    watch = FakeWatch()
    watch.current = None  # not listening (yet, or connection lost)
    cache = TokenCache(ttl_s=3600, watch=watch)
    cache.put("vo_a", ALICE, ticket=cache.ticket())
    assert cache.get("vo_a") is None
    watch.current = 7  # listening again: a fresh generation
    assert cache.get("vo_a") is None
    cache.put("vo_a", ALICE, ticket=cache.ticket())
    assert cache.get("vo_a") == ALICE


def test_forget_all_is_this_process_s_own_change() -> None:
    watch = FakeWatch()
    cache = TokenCache(ttl_s=3600, watch=watch)
    ticket = cache.ticket()
    cache.put("vo_a", ALICE, ticket=ticket)
    cache.forget_all()
    assert watch.bumped == 1
    assert cache.get("vo_a") is None
    cache.put("vo_a", ALICE, ticket=ticket)  # a lookup begun before the change
    assert cache.get("vo_a") is None
