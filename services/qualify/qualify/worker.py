"""Qualify's worker: the outbox relay, the queue's consumer of lead events (new leads and their
first answer, the prospect's replies and bounces), erasure and export, the do-not-contact list,
rectification, and the messaging loops (the sender, SMS receipts)."""

from __future__ import annotations

from collections.abc import Sequence

from qualify.messages.compose import Composer
from qualify.messages.handlers import bounce_handler, reply_handler
from qualify.messages.handoff import SenderHandoff
from qualify.messages.loops import FirstAnswerStep, messaging_loops
from qualify.models import metadata
from qualify.policy import Policy
from qualify.privacy.rectification import CLIENT_RECTIFIED, rectification_handler
from qualify.queue.handlers import lead_received_handler
from qualify.settings import QualifySettings
from qualify.suppression.handlers import on_contact_suppressed
from shared.access.consumer import access_consumer
from shared.consumer import build_consumer
from shared.events import Topics
from shared.privacy import (
    CONTACT_SUPPRESSED,
    lead_scoped_eraser,
    lead_scoped_exporter,
    privacy_consumer,
)
from shared.runtime import Runtime
from shared.worker import Loop


def consumers(runtime: Runtime[QualifySettings]) -> Sequence[Loop]:
    settings = runtime.settings
    policy = Policy.from_settings(settings)
    composer = Composer(settings, policy)
    key = settings.privacy_hmac_key.get_secret_value().encode()
    # The first answers decided here go straight to this process's sender (claimed at birth).
    handoff = SenderHandoff()
    return [
        access_consumer(runtime),
        build_consumer(
            runtime,
            name="qualify.queue",
            topics=[Topics.LEADS],
            handlers={
                "lead.received.v1": lead_received_handler(
                    policy, runtime.clock, runtime.outbox, FirstAnswerStep(composer, handoff)
                ),
                "lead.message-received.v1": reply_handler(runtime.outbox, runtime.clock, key),
                "lead.message-bounced.v1": bounce_handler(runtime.outbox, runtime.clock, key),
            },
        ),
        privacy_consumer(
            runtime,
            erase=lead_scoped_eraser(metadata),
            export=lead_scoped_exporter(metadata),
            extra_handlers={
                CONTACT_SUPPRESSED: on_contact_suppressed,
                CLIENT_RECTIFIED: rectification_handler(runtime.outbox, runtime.clock),
            },
        ),
        *messaging_loops(runtime, composer, handoff),
    ]
