"""FastAPI dependencies of qualify: its settings, the callers' roles, the policy and the
messaging components."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from qualify.messages.compose import Composer
from qualify.messages.receipts import ReceiptCallback
from qualify.policy import Policy
from qualify.settings import QualifySettings
from shared.api import component, require_roles, settings_of
from shared.auth import Principal

SettingsDep = Annotated[QualifySettings, Depends(settings_of)]

# Operators work the queue; managers may do everything operators may (admins anything).
Operator = Annotated[Principal, Depends(require_roles("operator", "manager"))]
Manager = Annotated[Principal, Depends(require_roles("manager"))]
# Templates are the dealer's voice, routing rules decide where leads go: admins manage them.
Admin = Annotated[Principal, Depends(require_roles("admin"))]

PolicyDep = Annotated[Policy, Depends(component(Policy))]
ComposerDep = Annotated[Composer, Depends(component(Composer))]
ReceiptCallbackDep = Annotated[ReceiptCallback, Depends(component(ReceiptCallback))]


def is_manager(principal: Principal) -> bool:
    return principal.has_any(("manager",))
