"""FastAPI dependencies every service uses: the runtime, a unit of work per request, and the
caller's principal with its roles."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import ROLES, Principal, authenticate
from shared.db.session import session_scope
from shared.errors import Forbidden, Unauthorized
from shared.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    runtime = request.app.state.runtime
    assert isinstance(runtime, Runtime)
    return runtime


async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One unit of work per request, committed before the response is sent."""
    async with session_scope(runtime_of(request).session_factory) as session:
        yield session


RuntimeDep = Annotated[Runtime, Depends(runtime_of)]
SessionDep = Annotated[AsyncSession, Depends(request_session, scope="function")]


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("A bearer token is required.")
    return token.strip()


def require_roles(*roles: str) -> Callable[[Request], Awaitable[Principal]]:
    """Dependency: the caller's principal, which must hold one of ``roles`` (admin always may)."""
    for role in roles:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")

    async def dependency(request: Request) -> Principal:
        runtime = runtime_of(request)
        token = bearer_token(request)
        principal = runtime.tokens.get(token)
        if principal is None:
            async with runtime.session_factory() as session:
                principal = await authenticate(session, runtime.infra.api_token, token)
            if principal is None:
                raise Unauthorized("The token is unknown or revoked.")
            runtime.tokens.put(token, principal)
        if not principal.has_any(roles):
            raise Forbidden(f"This operation needs one of the roles: {', '.join(roles)}.")
        return principal

    return dependency
