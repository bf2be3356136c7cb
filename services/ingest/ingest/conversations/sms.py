"""The worker's inbound SMS loop: ask the provider for the replies waiting there (OVH keeps them
until deleted; docs/messaging.md), record each (its own committed transaction), then acknowledge
it. A crash between the commit and the acknowledgement fetches the message again: it is known by
its provider id, nothing is published twice. A reply the loop cannot match yet stays at the
provider (``INGEST_SMS_INBOUND_MATCH_WAIT_S``)."""

from __future__ import annotations

from datetime import timedelta

import structlog

from ingest.conversations.service import take_sms
from ingest.intake.metrics import count_input
from ingest.settings import IngestSettings
from shared.db.session import session_scope
from shared.messaging.sms.ovh import OvhSmsProvider
from shared.messaging.sms.provider import SmsProvider
from shared.runtime import Runtime

log = structlog.get_logger(__name__)


class SmsInbox:
    def __init__(self, runtime: Runtime[IngestSettings], provider: SmsProvider | None = None):
        self.runtime = runtime
        self._provider = provider
        settings = runtime.settings
        self._key = settings.privacy_hmac_key.get_secret_value().encode()
        self._match_wait = timedelta(seconds=settings.sms_inbound_match_wait_s)

    @property
    def provider(self) -> SmsProvider:
        if self._provider is None:
            self._provider = OvhSmsProvider(self.runtime.settings)
        return self._provider

    async def close(self) -> None:
        if self._provider is not None:
            await self._provider.aclose()
            self._provider = None

    async def step(self) -> float:
        """One pass over the provider's inbound messages; returns the pause before the next."""
        await self.poll_once()
        return self.runtime.settings.sms_inbound_poll_interval_s

    async def poll_once(self) -> int:
        """Take in what waits at the provider; returns how many messages were acknowledged."""
        provider = self.provider
        runtime = self.runtime
        acknowledged = 0
        for sms in await provider.fetch_inbound():
            async with session_scope(runtime.session_factory) as session:
                taken = await take_sms(
                    session,
                    sms,
                    provider=provider.name,
                    key=self._key,
                    outbox=runtime.outbox,
                    now=runtime.clock(),
                    match_wait=self._match_wait,
                )
            if taken.acknowledge:  # only once the record is committed
                await provider.acknowledge_inbound(sms.provider_message_id)
                acknowledged += 1
                count_input(runtime.metrics, "sms", taken.outcome)
            log.info(
                "sms.inbound_taken",
                provider_message_id=sms.provider_message_id,
                outcome=taken.outcome,
                lead_id=taken.lead_id,
            )
        return acknowledged
