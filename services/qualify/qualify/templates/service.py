"""Managing templates and choosing the one that applies: an admin's override for the lead's
site and source, else for its site, else for its source, else for every lead, else the built-in
French default (the most specific wins)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from qualify.messages.state import TemplateKind
from qualify.models import MessageTemplate
from qualify.templates.defaults import DEFAULTS, TemplateContent
from qualify.templates.problems import TemplateExists, TemplateNotFound, invalid_template
from qualify.templates.rendering import check
from qualify.templates.repository import TemplateRepository, scope_key
from qualify.templates.schemas import TemplateContentIn, TemplateIn
from shared.auth import Principal
from shared.events.payloads import MessageChannel

TemplateScope = Literal["default", "all_leads", "source", "site", "site_and_source", "given"]


@dataclass(frozen=True)
class ResolvedTemplate:
    content: TemplateContent
    template_id: str | None  # None: the built-in default (or a content given to the preview)
    scope: TemplateScope


def _scope(site: str | None, source: str | None) -> TemplateScope:
    if site is not None and source is not None:
        return "site_and_source"
    if site is not None:
        return "site"
    if source is not None:
        return "source"
    return "all_leads"


_RANK: dict[TemplateScope, int] = {"site_and_source": 3, "site": 2, "source": 1, "all_leads": 0}


async def resolve(
    session: AsyncSession,
    kind: TemplateKind,
    channel: MessageChannel,
    *,
    site: str | None,
    source: str | None,
) -> ResolvedTemplate:
    # The prebuilt statement of ``resolve_channels`` (no ORM objects, nothing built per call).
    resolved = await resolve_channels(session, kind, (channel,), site=site, source=source)
    return resolved[channel]


async def resolve_channels(
    session: AsyncSession,
    kind: TemplateKind,
    channels: Collection[MessageChannel],
    *,
    site: str | None,
    source: str | None,
) -> dict[MessageChannel, ResolvedTemplate]:
    """``resolve`` for several channels at once (one statement: a new lead's first answer)."""
    rows = await TemplateRepository.from_session(session).candidate_rows(
        kind, channels, site=site, source=source
    )
    return pick(rows, kind, channels, site=site, source=source)


def pick(
    rows: Iterable[Any],
    kind: TemplateKind,
    channels: Collection[MessageChannel],
    *,
    site: str | None,
    source: str | None,
) -> dict[MessageChannel, ResolvedTemplate]:
    """The template of each of ``channels`` among override ``rows`` of ``kind`` (any: those
    that do not apply to ``site`` and ``source`` are skipped, as ``candidate_rows`` does)."""
    best: dict[MessageChannel, tuple[int, ResolvedTemplate]] = {}
    for row in rows:
        if row.channel not in channels or not _applies(row.site, site):
            continue
        if not _applies(row.source, source):
            continue
        scope = _scope(row.site, row.source)
        rank = _RANK[scope]
        if row.channel not in best or rank > best[row.channel][0]:
            content = TemplateContent(subject=row.subject, text=row.text, html=row.html)
            best[row.channel] = (rank, ResolvedTemplate(content, row.id, scope))
    return {
        channel: best[channel][1]
        if channel in best
        else ResolvedTemplate(DEFAULTS[(kind, channel)], None, "default")
        for channel in channels
    }


def _applies(scoped: str | None, value: str | None) -> bool:
    """An override for every value, or for this one (a lead without one matches the former)."""
    return scoped is None or (value is not None and scoped == value)


def checked(content: TemplateContentIn, kind: TemplateKind) -> TemplateContent:
    """The content as stored, or a 422 naming each unknown variable and stray brace."""
    stored = TemplateContent(subject=content.subject, text=content.text, html=content.html)
    errors = check(stored, kind)
    if errors:
        raise invalid_template(errors)
    return stored


async def create(
    session: AsyncSession, body: TemplateIn, principal: Principal, now: datetime
) -> MessageTemplate:
    content = checked(body, body.kind)
    repository = TemplateRepository.from_session(session)
    scope = scope_key(body.site, body.source)
    if await repository.in_scope(body.kind, body.channel, scope) is not None:
        raise TemplateExists(
            "A template of this kind and channel exists for this site and source: update it."
        )
    template = MessageTemplate(
        id=str(uuid.uuid4()),
        kind=body.kind,
        channel=body.channel,
        site=body.site,
        source=body.source,
        scope=scope,
        subject=content.subject,
        text=content.text,
        html=content.html,
        created_at=now,
        updated_at=now,
        updated_by=principal.token_id,
    )
    repository.add(template)
    try:
        await session.flush()
    except IntegrityError:
        raise TemplateExists("A concurrent request created this template.") from None
    return template


async def listed(
    session: AsyncSession,
    *,
    kind: TemplateKind | None,
    channel: MessageChannel | None,
    site: str | None,
    source: str | None,
) -> Sequence[MessageTemplate]:
    return await TemplateRepository.from_session(session).listed(
        kind=kind, channel=channel, site=site, source=source
    )


async def get(session: AsyncSession, template_id: str) -> MessageTemplate:
    template = await TemplateRepository.from_session(session).get(template_id)
    if template is None:
        raise TemplateNotFound()
    return template


async def replace_content(
    session: AsyncSession,
    template_id: str,
    body: TemplateContentIn,
    principal: Principal,
    now: datetime,
) -> MessageTemplate:
    template = await get(session, template_id)
    content = checked(body, template.kind)
    body.require_channel_fields(template.channel)
    template.subject, template.text, template.html = content.subject, content.text, content.html
    template.updated_at = now
    template.updated_by = principal.token_id
    return template


async def delete(session: AsyncSession, template_id: str) -> None:
    repository = TemplateRepository.from_session(session)
    template = await get(session, template_id)
    await repository.delete(template)
