"""The crm worker's daily retention run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from crm.privacy.exports import EXPORT_KEPT, forget_exports
from crm.privacy.retention import daily_run_due, run_retention
from crm.settings import CrmSettings
from shared.clock import utcnow
from shared.db.session import session_scope
from shared.jobs import PeriodicJob
from shared.runtime import Runtime


def retention_job(runtime: Runtime[Any]) -> PeriodicJob:
    settings = runtime.settings
    assert isinstance(settings, CrmSettings)

    async def run_if_due() -> None:
        if not await daily_run_due(runtime.session_factory, now=utcnow()):
            return
        async with session_scope(runtime.session_factory) as session:
            await forget_exports(session, client_id=None, before=utcnow() - EXPORT_KEPT)
        await run_retention(
            runtime.session_factory,
            retention=timedelta(days=settings.client_retention_days),
            dry_run=False,
            trigger="daily",
            batch_size=settings.retention_batch_size,
            hmac_key=settings.privacy_hmac_key.get_secret_value().encode(),
        )

    return PeriodicJob(
        name="crm.retention",
        action=run_if_due,
        interval_s=settings.retention_check_interval_s,
        initial_delay_s=settings.retention_check_interval_s,
    )
