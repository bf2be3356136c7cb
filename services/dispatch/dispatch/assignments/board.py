"""The managers' board: per site (and the full-web pool), the unassigned leads, the deadlines
due within a margin (at risk) and those passed (breached): offers not accepted in time, first
contacts overdue."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from dispatch.assignments.repository import AssignmentRepository
from dispatch.assignments.schemas import Board, BoardItem, Deadline, LeadState, SiteBoard
from dispatch.assignments.state import OFFERED


async def board(
    repo: AssignmentRepository, *, now: datetime, margin: timedelta, site_id: str | None
) -> Board:
    per_site: dict[str | None, SiteBoard] = defaultdict(
        lambda: SiteBoard(site_id=None, unassigned=[], at_risk=[], breached=[])
    )

    def site_board(key: str | None) -> SiteBoard:
        entry = per_site[key]
        entry.site_id = key
        return entry

    for lead in await repo.unassigned_leads(site_id=site_id):
        site_board(lead.site_id).unassigned.append(LeadState.model_validate(lead))

    for assignment in await repo.deadlines_due_by(now + margin, site_id=site_id):
        due: datetime | None = assignment.accept_due_at
        deadline: Deadline = "accept"
        if assignment.status != OFFERED:
            deadline, due = "first_contact", assignment.first_contact_due_at
        item = BoardItem(
            lead_id=assignment.lead_id,
            assignment_id=assignment.id,
            seller_id=assignment.seller_id,
            site_id=assignment.site_id,
            status=assignment.status,
            deadline=deadline,
            due_at=due,
        )
        entry = site_board(assignment.site_id)
        (entry.breached if due is not None and due <= now else entry.at_risk).append(item)
    sites = sorted(per_site.values(), key=lambda entry: (entry.site_id is None, entry.site_id))
    return Board(generated_at=now, at_risk_minutes=int(margin.total_seconds() // 60), sites=sites)
