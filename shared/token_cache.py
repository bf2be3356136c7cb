"""A short-lived in-process cache of authenticated tokens: a token is looked up in the database
at most once per TTL per process, which takes a query off every request. A revoked token stops
working within the TTL."""

from __future__ import annotations

import time
from collections import OrderedDict

from shared.auth import Principal, hash_token

DEFAULT_TTL_S = 30.0
MAX_ENTRIES = 10_000


class TokenCache:
    def __init__(self, *, ttl_s: float = DEFAULT_TTL_S, max_entries: int = MAX_ENTRIES) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        # Keyed by the token's hash: the plain token is never kept in memory longer than a request.
        self._entries: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def get(self, token: str) -> Principal | None:
        key = hash_token(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        principal, expires_at = entry
        if time.monotonic() >= expires_at:
            del self._entries[key]
            return None
        return principal

    def put(self, token: str, principal: Principal) -> None:
        key = hash_token(token)
        self._entries[key] = (principal, time.monotonic() + self._ttl_s)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
