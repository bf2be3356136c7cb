"""FastAPI dependencies of qualify: its settings, the callers' roles, the policy and the
messaging components."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from qualify.messages.compose import Composer
from qualify.messages.receipts import ReceiptCallback
from qualify.policy import Policy
from qualify.settings import QualifySettings
from shared.api import component, require_roles, runtime_of, settings_of
from shared.auth import Principal
from shared.db.session import single_statement

SettingsDep = Annotated[QualifySettings, Depends(settings_of)]

# Operators work the queue; managers may do everything operators may (admins anything).
Operator = Annotated[Principal, Depends(require_roles("operator", "manager"))]
Manager = Annotated[Principal, Depends(require_roles("manager"))]
# Templates are the dealer's voice, routing rules decide where leads go: admins manage them.
Admin = Annotated[Principal, Depends(require_roles("admin"))]

PolicyDep = Annotated[Policy, Depends(component(Policy))]
ComposerDep = Annotated[Composer, Depends(component(Composer))]
ReceiptCallbackDep = Annotated[ReceiptCallback, Depends(component(ReceiptCallback))]


async def single_statement_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The session of a route whose database work is one statement, atomic by itself (the
    queue's page; a claim's conditional UPDATE, whose refusal only reads). On PostgreSQL it runs
    in autocommit: one round trip, where BEGIN and COMMIT around it made three. On SQLite a
    unit of work as usual: its BEGIN and COMMIT are no round trips, and switching a connection
    to autocommit and back costs more than they do."""
    async with single_statement(runtime_of(request).session_factory) as session:
        yield session


SingleStatementSessionDep = Annotated[
    AsyncSession, Depends(single_statement_session, scope="function")
]


def is_manager(principal: Principal) -> bool:
    return principal.has_any(("manager",))
