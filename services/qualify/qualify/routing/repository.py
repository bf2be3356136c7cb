"""SQL of the routing rules (a small table: read whole at each new lead)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select

from qualify.models import RoutingRule
from shared.db.repository import Repository


class RoutingRuleRepository(Repository):
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
