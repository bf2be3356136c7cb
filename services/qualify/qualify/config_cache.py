"""The routing rules and the message templates, read by every new lead, cached in the process.

Valid while ``config_version`` (one row, bumped by triggers on both tables in the writer's own
statement: models.ConfigVersion) holds the version the cache was filled at. The worker reads
it in the statement that inserts the lead (``LeadRepository.add_new_reading_version``): no
round trip of its own. A version that moved drops what was cached, and the lead reads the
tables again in its transaction, after that statement: what it reads is at least as new as
the version it saw, so a change the API committed is applied from the next lead on. Without a
version (no row) nothing is cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from qualify.messages.state import TemplateKind
from qualify.routing.policy import Rule
from qualify.routing.repository import RoutingRuleRepository
from qualify.templates.repository import TemplateRepository


@dataclass
class _Filled:
    """What was read at one version (filled on first use)."""

    version: int
    rules: Sequence[Rule] | None = None
    templates: dict[TemplateKind, Sequence[Any]] = field(default_factory=dict)


class ConfigCache:
    """One per process (on ``Policy``): the rules and templates at the last version seen."""

    def __init__(self) -> None:
        self._filled: _Filled | None = None

    def at(self, version: int | None) -> ConfigView:
        """The view for a lead whose statement saw ``version`` (None: read every time)."""
        if version is None:
            return ConfigView(None)
        filled = self._filled
        if filled is None or filled.version != version:
            filled = self._filled = _Filled(version)
        return ConfigView(filled)


class ConfigView:
    """The rules and templates for one lead: cached when valid at its version, else read in
    its session (and cached for the leads that see the same version)."""

    def __init__(self, filled: _Filled | None) -> None:
        self._filled = filled

    async def rules(self, session: AsyncSession) -> Sequence[Rule]:
        filled = self._filled
        if filled is not None and filled.rules is not None:
            return filled.rules
        rules = await RoutingRuleRepository.from_session(session).for_routing()
        if filled is not None:
            filled.rules = rules
        return rules

    async def template_rows(self, session: AsyncSession, kind: TemplateKind) -> Sequence[Any]:
        """Every override of ``kind`` (``TemplateRepository.rows_of_kind``)."""
        filled = self._filled
        if filled is not None and kind in filled.templates:
            return filled.templates[kind]
        rows = await TemplateRepository.from_session(session).rows_of_kind(kind)
        if filled is not None:
            filled.templates[kind] = rows
        return rows
