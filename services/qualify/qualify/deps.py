"""FastAPI dependencies of qualify: its settings, the callers' roles, the policy and the
messaging components."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from qualify.messages.compose import Composer
from qualify.messages.receipts import ReceiptCallback
from qualify.policy import Policy
from qualify.settings import QualifySettings
from shared.api import component, require_roles, runtime_of, settings_of
from shared.auth import Principal
from shared.runtime import Runtime

SettingsDep = Annotated[QualifySettings, Depends(settings_of)]

# Operators work the queue; managers may do everything operators may (admins anything).
OPERATE = require_roles("operator", "manager")  # also the direct routes' (``qualify.app``)
Operator = Annotated[Principal, Depends(OPERATE)]
Manager = Annotated[Principal, Depends(require_roles("manager"))]
# Templates are the dealer's voice, routing rules decide where leads go: admins manage them.
Admin = Annotated[Principal, Depends(require_roles("admin"))]

PolicyDep = Annotated[Policy, Depends(component(Policy))]
ComposerDep = Annotated[Composer, Depends(component(Composer))]
ReceiptCallbackDep = Annotated[ReceiptCallback, Depends(component(ReceiptCallback))]


async def the_runtime(request: Request) -> Runtime[Any]:
    """The process's runtime. ``async`` (shared ``RuntimeDep``'s ``runtime_of`` is a plain
    ``def``, which FastAPI runs in its thread pool: a thread hop per request)."""
    return runtime_of(request)


# The hot routes' one dependency besides the caller (the poll, claims, qualifications): their
# session, policy and clock come from it (each dependency is a step of FastAPI's solve).
RuntimeDep = Annotated[Runtime[Any], Depends(the_runtime)]


def is_manager(principal: Principal) -> bool:
    return principal.has_any(("manager",))
