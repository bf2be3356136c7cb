"""The worker's re-publication of the people directory (``vo.access``): at start, then every
``DISPATCH_PEOPLE_REPUBLISH_INTERVAL_S``. The topic's retention is bounded (staff names): a
service whose copy was rebuilt, or added later, learns everyone from these events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from dispatch.people.service import PeopleDirectory
from dispatch.settings import DispatchSettings
from shared.clock import Clock
from shared.db.session import SessionFactory, session_scope
from shared.outbox import Outbox

log = structlog.get_logger(__name__)


def republish_people_job(
    session_factory: SessionFactory, outbox: Outbox, settings: DispatchSettings, clock: Clock
) -> Callable[[], Awaitable[None]]:
    async def republish() -> None:
        async with session_scope(session_factory) as session:
            directory = PeopleDirectory(
                session, outbox, clock(), default_issuer=settings.oidc_issuer
            )
            published = await directory.republish()
        log.info("dispatch.people_republished", people=published.people, tokens=published.tokens)

    return republish
