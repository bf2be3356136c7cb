"""FastAPI dependencies of ingest: its settings, the callers' roles, what the JSON intake needs
(one dependency), the lead tokens. Time (``NowDep``), the outbox (``OutboxDep``) and the unit
of work (``SessionDep``) come from ``shared.api``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request

from ingest.leads.group_commit import LeadGroupCommit
from ingest.settings import IngestSettings
from shared.api import component, require_roles, runtime_of, settings_of
from shared.auth import Principal
from shared.messaging.lead_tokens import LeadTokens
from shared.runtime import Runtime

SettingsDep = Annotated[IngestSettings, Depends(settings_of)]

# Sources post leads; operators and managers may too (tests, manual entry).
SUBMIT = require_roles("source", "operator", "manager")
Submitter = Annotated[Principal, Depends(SUBMIT)]  # SUBMIT also guards the direct JSON intake
# Operators read a lead without its contact details (they read them in qualify's queue);
# managers and the data-protection officer read them whole (``Principal.reads_any_contact``).
Reader = Annotated[Principal, Depends(require_roles("operator", "manager", "dpo"))]
Fixer = Annotated[Principal, Depends(require_roles("operator", "manager"))]


@dataclass(frozen=True, slots=True)
class JsonIntake:
    """What ``POST /v1/leads`` needs besides its caller, resolved as one dependency: FastAPI
    solves each dependency recursively, and four of them were ~15 % of the route's CPU."""

    runtime: Runtime[Any]
    settings: IngestSettings
    writer: LeadGroupCommit  # the group commit (a runtime component, ``lead_group_commit``)
    now: datetime  # the runtime's clock, read once per request


async def json_intake(request: Request) -> JsonIntake:
    runtime = runtime_of(request)
    return JsonIntake(
        runtime, runtime.settings, runtime.component(LeadGroupCommit), runtime.clock()
    )


IntakeDep = Annotated[JsonIntake, Depends(json_intake)]
LeadTokensDep = Annotated[LeadTokens, Depends(component(LeadTokens))]
