"""HTTP API of qualification and disqualification."""

from __future__ import annotations

from fastapi import APIRouter, status

from qualify.deps import LEAD_PROBLEMS, PolicyDep, Worker
from qualify.qualification import service
from qualify.qualification.schemas import (
    DisqualificationIn,
    DisqualificationOut,
    QualificationIn,
    QualificationOut,
)
from shared.api import SessionDep

router = APIRouter(prefix="/v1/leads/{lead_id}", tags=["qualification"])


@router.post(
    "/qualification",
    status_code=status.HTTP_201_CREATED,
    response_model=QualificationOut,
    summary="Qualify the claimed lead (publishes lead.qualified.v1)",
    responses=LEAD_PROBLEMS,
)
async def post_qualification(
    lead_id: str, body: QualificationIn, session: SessionDep, principal: Worker, policy: PolicyDep
) -> QualificationOut:
    qualification = await service.qualify(session, policy, principal, lead_id, body)
    return QualificationOut(
        lead_id=qualification.lead_id,
        operator_id=qualification.operator_id,
        qualified_at=qualification.qualified_at,
        qualification=QualificationIn.model_validate(qualification.data),
    )


@router.post(
    "/disqualification",
    status_code=status.HTTP_201_CREATED,
    response_model=DisqualificationOut,
    summary="Disqualify the claimed lead (publishes lead.disqualified.v1)",
    responses=LEAD_PROBLEMS,
)
async def post_disqualification(
    lead_id: str,
    body: DisqualificationIn,
    session: SessionDep,
    principal: Worker,
    policy: PolicyDep,
) -> DisqualificationOut:
    lead = await service.disqualify(session, policy, principal, lead_id, body)
    assert lead.closed_at is not None
    assert lead.disqualification_reason is not None
    return DisqualificationOut(
        lead_id=lead.lead_id,
        reason=lead.disqualification_reason,
        duplicate_of=lead.duplicate_of,
        disqualified_at=lead.closed_at,
    )
