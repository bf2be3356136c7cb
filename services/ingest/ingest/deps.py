"""FastAPI dependencies of ingest: its settings, the callers' roles, the JSON intake's group
commit, the lead tokens. Time (``NowDep``), the outbox (``OutboxDep``) and the unit of work
(``SessionDep``) come from ``shared.api``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from ingest.leads.group_commit import LeadGroupCommit
from ingest.settings import IngestSettings
from shared.api import component, require_roles, settings_of
from shared.auth import Principal
from shared.messaging.lead_tokens import LeadTokens

SettingsDep = Annotated[IngestSettings, Depends(settings_of)]

# Sources post leads; operators and managers may too (tests, manual entry).
Submitter = Annotated[Principal, Depends(require_roles("source", "operator", "manager"))]
# Operators read a lead without its contact details (they read them in qualify's queue);
# managers and the data-protection officer read them whole (``Principal.reads_any_contact``).
Reader = Annotated[Principal, Depends(require_roles("operator", "manager", "dpo"))]
Fixer = Annotated[Principal, Depends(require_roles("operator", "manager"))]

GroupCommitDep = Annotated[LeadGroupCommit, Depends(component(LeadGroupCommit))]
LeadTokensDep = Annotated[LeadTokens, Depends(component(LeadTokens))]
