"""The crm worker's periodic jobs: the daily retention run, the re-ask of waiting erasures."""

from __future__ import annotations

from datetime import timedelta

from crm.privacy.exports import EXPORT_KEPT
from crm.privacy.metrics import ErasureMetrics
from crm.privacy.reask import reask_pass
from crm.privacy.repository import ExportRepository
from crm.privacy.retention import daily_run_due, run_retention
from crm.settings import CrmSettings
from shared.db.session import session_scope
from shared.jobs import PeriodicJob
from shared.runtime import Runtime


def retention_job(runtime: Runtime[CrmSettings]) -> PeriodicJob:
    settings = runtime.settings

    async def run_if_due() -> None:
        now = runtime.clock()
        if not await daily_run_due(runtime.session_factory, now=now):
            return
        async with session_scope(runtime.session_factory) as session:
            await ExportRepository.from_session(session).forget(
                client_id=None, before=now - EXPORT_KEPT
            )
        await run_retention(
            runtime.session_factory,
            runtime.outbox,
            clock=runtime.clock,
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


def erasure_reask_job(runtime: Runtime[CrmSettings]) -> PeriodicJob:
    """Erasures waiting on a service too long are asked again, with an alert (reask.py)."""
    metrics = ErasureMetrics(runtime.settings.service_name, runtime.metrics.registry)
    interval = runtime.settings.erasure_reask_check_interval_s

    async def action() -> None:
        await reask_pass(runtime, metrics)

    return PeriodicJob(
        name="crm.erasure_reask", action=action, interval_s=interval, initial_delay_s=interval
    )
