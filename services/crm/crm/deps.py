"""FastAPI dependencies of crm: its settings and runtime, the callers' roles, the privacy key and
the SLA policy."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from crm.settings import CrmSettings
from crm.sla.fact_copy.copy import SlaFactCopy
from crm.sla.stages import SlaPolicy
from shared.api import component, require_roles, runtime_of, settings_of
from shared.auth import Principal
from shared.runtime import Runtime

SettingsDep = Annotated[CrmSettings, Depends(settings_of)]
# For the routes that run their own transactions (the retention run): sessions, clock, outbox.
RuntimeDep = Annotated[Runtime[CrmSettings], Depends(runtime_of)]

Manager = Annotated[Principal, Depends(require_roles("manager"))]
Staff = Annotated[Principal, Depends(require_roles("operator", "manager"))]
# Rectification (Art. 16): managers and the data-protection officer.
DataProtection = Annotated[Principal, Depends(require_roles("manager", "dpo"))]
# Who reads clients: operators by exact phone or e-mail and without contact details (data
# minimisation, crm/clients/minimise.py), managers and the data-protection officer whole.
ClientReader = Annotated[Principal, Depends(require_roles("operator", "manager", "dpo"))]


async def privacy_key(settings: SettingsDep) -> bytes:
    """The key of the contact hashes (erasure requests, do-not-contact list). ``async``: FastAPI
    runs a plain ``def`` dependency in its thread pool."""
    return settings.privacy_hmac_key.get_secret_value().encode()


PrivacyKeyDep = Annotated[bytes, Depends(privacy_key)]
SlaPolicyDep = Annotated[SlaPolicy, Depends(component(SlaPolicy))]


async def fact_copy(runtime: RuntimeDep) -> SlaFactCopy | None:
    """This process's columnar copy of the SLA facts, if it keeps one (PostgreSQL)."""
    try:
        return runtime.component(SlaFactCopy)
    except LookupError:
        return None


FactCopyDep = Annotated[SlaFactCopy | None, Depends(fact_copy)]
