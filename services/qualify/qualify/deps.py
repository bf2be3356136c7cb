"""FastAPI dependencies of qualify: the caller (operator or manager) and the policy."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from qualify.policy import Policy, policy_of
from shared.api import require_roles
from shared.auth import Principal

Worker = Annotated[Principal, Depends(require_roles("operator", "manager"))]
Manager = Annotated[Principal, Depends(require_roles("manager"))]
PolicyDep = Annotated[Policy, Depends(policy_of)]

PROBLEMS: dict[int | str, dict[str, str]] = {
    401: {"description": "No valid token (problem+json)"},
    403: {"description": "Missing role (problem+json)"},
    422: {"description": "Invalid fields, each named (problem+json)"},
}
LEAD_PROBLEMS: dict[int | str, dict[str, str]] = {
    **PROBLEMS,
    404: {"description": "Unknown lead (problem+json)"},
    409: {"description": "Illegal in the lead's state, or refused by a rule (problem+json)"},
}


def is_manager(principal: Principal) -> bool:
    return principal.has_any(("manager",))
