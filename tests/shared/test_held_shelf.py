"""The keeping rule of connections held between units of work (shared.db.held.Shelf)."""

from __future__ import annotations

import time

from shared.db.held import Shelf


def test_keeps_at_most_keep_and_hands_them_back_last_in_first_out() -> None:
    shelf: Shelf[str] = Shelf(keep=2, hold_s=60.0)
    now = time.monotonic()
    assert shelf.keeps("a", now, invalidated=False)
    assert shelf.keeps("b", now, invalidated=False)
    assert not shelf.keeps("c", now, invalidated=False)  # full: the caller gives it back
    assert len(shelf) == 2
    assert shelf.take() == ("b", now)
    assert shelf.take() == ("a", now)
    assert shelf.take() is None


def test_an_invalidated_or_old_connection_is_not_kept() -> None:
    shelf: Shelf[str] = Shelf(keep=4, hold_s=60.0)
    assert not shelf.keeps("broken", time.monotonic(), invalidated=True)
    assert not shelf.keeps("old", time.monotonic() - 61.0, invalidated=False)
    assert len(shelf) == 0


def test_a_closed_shelf_returns_what_waited_and_keeps_nothing_more() -> None:
    shelf: Shelf[str] = Shelf(keep=4, hold_s=60.0)
    shelf.keeps("a", time.monotonic(), invalidated=False)
    assert shelf.close() == ["a"]
    assert not shelf.keeps("b", time.monotonic(), invalidated=False)
    assert shelf.take() is None
