"""An in-process cache of authenticated API tokens (and of the people records single sign-on
looks up): a token is looked up in the database once, then answered from memory while nothing
changed.

"Nothing changed" is the ``AccessWatch``'s word (``shared.access.watch``): its generation moves
when any token or person of the service's database changes, from any process (PostgreSQL
LISTEN/NOTIFY, SQLite's ``data_version``), and the cache then forgets everything. While the watch
cannot vouch (not listening yet, connection lost), nothing is cached. A lookup remembers the
generation it started in (``ticket()``) and is stored only if it is still the current one, so an
answer read just before a revocation is never kept after it. The TTL is a safety net and bounds
memory; a watch-less cache (unit tests) lives by its TTL alone.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from shared.access.watch import AccessWatch
from shared.auth import Principal, hash_token

DEFAULT_TTL_S = 30.0
MAX_ENTRIES = 10_000


class TokenCache:
    def __init__(
        self,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_entries: int = MAX_ENTRIES,
        watch: AccessWatch | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._watch = watch
        self._monotonic = monotonic
        self._generation: int | None = None
        # Keyed by the token's hash: the plain token is never kept in memory longer than a request.
        self._entries: OrderedDict[str, tuple[Any, float]] = OrderedDict()

    def ticket(self) -> int | None:
        """The generation a lookup starts in (None: its answer will not be cached)."""
        current = 0 if self._watch is None else self._watch.generation()
        if current != self._generation:
            self._entries.clear()
            self._generation = current
        return current

    def get(self, token: str) -> Principal | None:
        found = self._get("t:" + hash_token(token))
        return found if isinstance(found, Principal) else None

    def put(self, token: str, principal: Principal, *, ticket: int | None) -> None:
        self._put("t:" + hash_token(token), principal, ticket)

    def sign_in(self, key: str) -> tuple[bool, Any]:
        """(found, value) of a single sign-on identity's record lookup (value may be None:
        "no record", which is worth remembering too)."""
        found = self._get("s:" + key, missing=_MISSING)
        return (False, None) if found is _MISSING else (True, found)

    def put_sign_in(self, key: str, value: Any, *, ticket: int | None) -> None:
        self._put("s:" + key, value, ticket)

    def forget_all(self) -> None:
        """This process changed tokens or people: nothing cached before is trusted."""
        self._entries.clear()
        if self._watch is not None:
            self._watch.bump()

    async def close(self) -> None:
        self._entries.clear()
        if self._watch is not None:
            await self._watch.close()

    def __len__(self) -> int:
        return len(self._entries)

    def _get(self, key: str, missing: Any = None) -> Any:
        if self.ticket() is None:
            return missing
        entry = self._entries.get(key)
        if entry is None:
            return missing
        value, expires_at = entry
        if self._monotonic() >= expires_at:
            del self._entries[key]
            return missing
        return value

    def _put(self, key: str, value: Any, ticket: int | None) -> None:
        if ticket is None or ticket != self.ticket():
            return  # something changed since the lookup began: its answer may be stale
        self._entries[key] = (value, self._monotonic() + self._ttl_s)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)


_MISSING = object()
