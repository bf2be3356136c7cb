"""Who may read a lead (and its conversation): a manager any lead; an operator the leads of the
queue, the one they hold and the ones they closed."""

from __future__ import annotations

from datetime import datetime

from qualify.deps import is_manager
from qualify.leads import state
from qualify.models import QueuedLead
from shared.auth import Principal


def can_read(lead: QueuedLead, principal: Principal, now: datetime) -> bool:
    if is_manager(principal):
        return True
    me = principal.token_id
    if not lead.is_open:
        return lead.handled_by == me
    return lead.claimed_by == me or not state.has_active_claim(lead, now)
