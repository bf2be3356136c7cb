"""SQL of the routing rules (a small table: read whole at each new lead)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, delete, select

from qualify.models import RoutingRule
from qualify.routing.policy import Rule
from shared.db.repository import Repository

_RULES = cast(Table, RoutingRule.__table__)
# What routing a new lead reads of every rule, built once (every new lead runs it): no ORM.
_FOR_ROUTING = select(
    _RULES.c.scope,
    _RULES.c.key,
    _RULES.c.path,
    _RULES.c.channel,
    _RULES.c.intent,
    _RULES.c.ad_ref_prefixes,
).order_by(_RULES.c.scope, _RULES.c.key)


class RoutingRuleRepository(Repository):
    async def for_routing(self) -> Sequence[Rule]:
        """Every rule as routing reads it, as rows of its columns."""
        return (await self.session.execute(_FOR_ROUTING)).all()

    async def all(self) -> Sequence[RoutingRule]:
        return (
            await self.session.scalars(
                select(RoutingRule).order_by(RoutingRule.scope, RoutingRule.key)
            )
        ).all()

    async def get(self, scope: str, key: str) -> RoutingRule | None:
        return await self.session.get(RoutingRule, (scope, key))

    def add(self, rule: RoutingRule) -> None:
        self.session.add(rule)

    async def delete(self, scope: str, key: str) -> bool:
        result = await self.session.execute(
            delete(RoutingRule).where(RoutingRule.scope == scope, RoutingRule.key == key)
        )
        return bool(getattr(result, "rowcount", 0))
