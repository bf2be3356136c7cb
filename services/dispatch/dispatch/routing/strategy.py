"""Pluggable routing strategies: a strategy orders the eligible sellers and picks one.

A strategy receives a ``CandidatePool`` that yields only eligible sellers (active, right pool or
site, under capacity, on shift, not absent, with the skills, not already tried for this lead) in
the order it asks for, lazily: the database sorts on the indexed pool columns, so the cost of a
decision barely grows with the number of sellers. Register a new strategy with ``register``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Literal, Protocol

from dispatch.models import Seller

# What a strategy may order the pool by, each ascending (the pool's repository maps them to the
# indexed columns): ``load`` = open offers and assignments, ``last_offered`` = least recently
# offered first (never offered before anyone), ``id`` = a stable last tie-break.
SortKey = Literal["load", "last_offered", "id"]


class CandidatePool(Protocol):
    def ordered(self, order: Sequence[SortKey]) -> AsyncIterator[Seller]:
        """Eligible sellers in this order (ties must be broken by the caller's order)."""
        ...


class RoutingStrategy(Protocol):
    """``order`` (optional): the order the strategy asks the pool for first, when it has one;
    intake may then read that pool's first page with its other read (``intake_probe``)."""

    name: str

    async def choose(self, pool: CandidatePool) -> Seller | None: ...


class LeastLoaded:
    """Fewest open offers and assignments first; round robin (least recently offered) on ties."""

    name = "least_loaded"
    order: tuple[SortKey, ...] = ("load", "last_offered", "id")

    async def choose(self, pool: CandidatePool) -> Seller | None:
        async for seller in pool.ordered(self.order):
            return seller
        return None


class RoundRobin:
    """Least recently offered first, whatever the load (under capacity)."""

    name = "round_robin"
    order: tuple[SortKey, ...] = ("last_offered", "id")

    async def choose(self, pool: CandidatePool) -> Seller | None:
        async for seller in pool.ordered(self.order):
            return seller
        return None


_REGISTRY: dict[str, RoutingStrategy] = {}


def register(strategy: RoutingStrategy) -> None:
    _REGISTRY[strategy.name] = strategy


def strategy_named(name: str) -> RoutingStrategy:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown routing strategy {name!r}") from None


def strategy_names() -> list[str]:
    return sorted(_REGISTRY)


register(LeastLoaded())
register(RoundRobin())
