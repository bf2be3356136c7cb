"""Connections held between units of work: a process that runs one autocommit statement per
unit (an operator's claim, a sender's record) keeps a few pooled connections already switched
to autocommit instead of taking one from the pool, switching it and resetting it on return each
time (~230 Python calls, about a third of such a unit's CPU, measured in qualify).

``Shelf`` is the keeping rule, for sync or async connections alike: at most ``keep`` wait; one
goes back to the pool once held ``hold_s`` (so the pool's recycling still applies), when it
was invalidated or used in an error (the caller gives it back: a broken one is discarded by the
pool), and once the shelf is closed."""

from __future__ import annotations

from time import monotonic
from typing import Generic, TypeVar

C = TypeVar("C")


class Shelf(Generic[C]):
    def __init__(self, keep: int, hold_s: float) -> None:
        self._keep = keep
        self._hold_s = hold_s
        self._idle: list[tuple[C, float]] = []
        self._closed = False

    def __len__(self) -> int:
        return len(self._idle)

    def take(self) -> tuple[C, float] | None:
        """A waiting connection and when it was first taken from the pool, or None."""
        return self._idle.pop() if self._idle else None

    def keeps(self, connection: C, since: float, *, invalidated: bool) -> bool:
        """Keep ``connection`` (used without error) for the next unit: True when it was put
        back on the shelf, False when the caller must give it back to the pool."""
        if (
            self._closed
            or invalidated
            or len(self._idle) >= self._keep
            or monotonic() - since > self._hold_s
        ):
            return False
        self._idle.append((connection, since))
        return True

    def close(self) -> list[C]:
        """Close the shelf: the connections that waited, for the caller to give back."""
        self._closed = True
        idle, self._idle = self._idle, []
        return [connection for connection, _ in idle]
