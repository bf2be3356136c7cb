"""SQL of the message templates (admins' overrides of the built-in ones)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Row, bindparam, or_, select

from qualify.messages.state import TemplateKind
from qualify.models import MessageTemplate
from shared.db.repository import Repository
from shared.events.payloads import MessageChannel


def scope_key(site: str | None, source: str | None) -> str:
    """The unique key of a template's (site, source): unique indexes treat NULLs as distinct."""
    return f"site={site or '*'};source={source or '*'}"


def _candidates_query() -> Any:
    """The overrides of a kind on some channels that apply to a (site, source), built once
    (``site = NULL`` is never true: a lead without a site matches the site-less ones only)."""
    table = MessageTemplate.__table__
    return select(
        table.c.id,
        table.c.channel,
        table.c.site,
        table.c.source,
        table.c.subject,
        table.c.text,
        table.c.html,
    ).where(
        table.c.kind == bindparam("kind"),
        table.c.channel.in_(bindparam("channels", expanding=True)),
        or_(table.c.site.is_(None), table.c.site == bindparam("site")),
        or_(table.c.source.is_(None), table.c.source == bindparam("source")),
    )


_CANDIDATES = _candidates_query()
# Every override of a kind, as ``_CANDIDATES`` reads them (the worker caches them: a new lead's
# first answer picks among them in the process, qualify.config_cache).
_OF_KIND = select(*_CANDIDATES.selected_columns).where(
    MessageTemplate.__table__.c.kind == bindparam("kind")
)


class TemplateRepository(Repository):
    def add(self, template: MessageTemplate) -> None:
        self.session.add(template)

    async def get(self, template_id: str) -> MessageTemplate | None:
        return await self.session.get(MessageTemplate, template_id)

    async def delete(self, template: MessageTemplate) -> None:
        await self.session.delete(template)

    async def in_scope(
        self, kind: TemplateKind, channel: MessageChannel, scope: str
    ) -> MessageTemplate | None:
        return await self.session.scalar(
            select(MessageTemplate).where(
                MessageTemplate.kind == kind,
                MessageTemplate.channel == channel,
                MessageTemplate.scope == scope,
            )
        )

    async def listed(
        self,
        *,
        kind: TemplateKind | None = None,
        channel: MessageChannel | None = None,
        site: str | None = None,
        source: str | None = None,
    ) -> Sequence[MessageTemplate]:
        query = select(MessageTemplate).order_by(
            MessageTemplate.kind, MessageTemplate.channel, MessageTemplate.scope
        )
        if kind is not None:
            query = query.where(MessageTemplate.kind == kind)
        if channel is not None:
            query = query.where(MessageTemplate.channel == channel)
        if site is not None:
            query = query.where(MessageTemplate.site == site)
        if source is not None:
            query = query.where(MessageTemplate.source == source)
        return (await self.session.scalars(query)).all()

    async def rows_of_kind(self, kind: TemplateKind) -> Sequence[Row[Any]]:
        """Every override of ``kind``, with the columns of ``candidate_rows``."""
        return (await self.session.execute(_OF_KIND, {"kind": kind})).all()

    async def candidate_rows(
        self,
        kind: TemplateKind,
        channels: Collection[MessageChannel],
        *,
        site: str | None,
        source: str | None,
    ) -> Sequence[Row[Any]]:
        """The overrides that apply to a lead of ``site`` and ``source`` on each of ``channels``
        (at most four per channel), in one statement: id, channel, site, source and content."""
        return (
            await self.session.execute(
                _CANDIDATES,
                {"kind": kind, "channels": list(channels), "site": site, "source": source},
            )
        ).all()
