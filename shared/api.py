"""FastAPI dependencies every service uses: the runtime (typed by each service's ``deps.py``), its
settings, clock and components, a unit of work per request, the caller's principal with its
roles, and the OpenAPI ``responses`` of problem classes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from shared.access.repository import AccessRepository, PersonRecord
from shared.auth import ROLES, Principal, authenticate
from shared.db.session import session_scope
from shared.errors import (
    PROBLEM_MEDIA_TYPE,
    Forbidden,
    Problem,
    ServiceUnavailable,
    Unauthorized,
)
from shared.oidc import KeysUnavailable, TokenRejected, looks_like_jwt, oidc_verifier
from shared.outbox import Outbox
from shared.runtime import Runtime

ComponentT = TypeVar("ComponentT")


def runtime_of(request: Request) -> Runtime[Any]:
    runtime = request.app.state.runtime
    assert isinstance(runtime, Runtime)
    return runtime


# The dependencies below are ``async def`` although they never wait: FastAPI runs a plain ``def``
# dependency in the thread pool, a thread hop per request (measured: ~0.1-0.3 ms each under load).


async def settings_of(request: Request) -> Any:
    """The service's settings; each ``deps.py`` annotates them with its own settings class."""
    return runtime_of(request).settings


async def now_of(request: Request) -> datetime:
    """ "Now" from the runtime's clock (tests pass their own clock to ``create_app``)."""
    return runtime_of(request).clock()


async def outbox_of(request: Request) -> Outbox:
    return runtime_of(request).outbox


def component(kind: type[ComponentT]) -> Callable[[Request], Awaitable[ComponentT]]:
    """Dependency: the per-process component of type ``kind`` (see ``Runtime.provide``)."""

    async def dependency(request: Request) -> ComponentT:
        return runtime_of(request).component(kind)

    return dependency


async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One unit of work per request, committed before the response is sent."""
    async with session_scope(runtime_of(request).session_factory) as session:
        yield session


RuntimeDep = Annotated[Runtime[Any], Depends(runtime_of)]
SessionDep = Annotated[AsyncSession, Depends(request_session, scope="function")]
NowDep = Annotated[datetime, Depends(now_of)]
OutboxDep = Annotated[Outbox, Depends(outbox_of)]


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("A bearer token is required.")
    return token.strip()


class RoleRequirement:
    """Dependency: the caller's principal, which must hold one of ``roles`` (admin always may).

    The bearer token is an OIDC access token when the service has single sign-on configured
    and the token looks like a JWT; otherwise it is an API token.

    An object rather than a closure so that the roles can be read back: the app publishes them
    in its OpenAPI document (``x-roles``, see ``shared.openapi_roles``), where the authorization
    matrix test reads them."""

    def __init__(self, *roles: str) -> None:
        for role in roles:
            if role not in ROLES:
                raise ValueError(f"unknown role {role!r}")
        self.roles = roles

    @property
    def allowed(self) -> frozenset[str]:
        """Every role that passes: the declared ones and admin."""
        return frozenset(self.roles) | {"admin"}

    async def __call__(self, request: Request) -> Principal:
        runtime = runtime_of(request)
        token = bearer_token(request)
        if runtime.settings.oidc_enabled and looks_like_jwt(token):
            principal = await _signed_in_principal(runtime, token)
        else:
            principal = await _api_token_principal(runtime, token)
        if not principal.has_any(self.roles):
            raise Forbidden(f"This operation needs one of the roles: {', '.join(self.roles)}.")
        return principal


def require_roles(*roles: str) -> RoleRequirement:
    """Dependency: the caller's principal, which must hold one of ``roles`` (admin always may)."""
    return RoleRequirement(*roles)


async def _api_token_principal(runtime: Runtime[Any], token: str) -> Principal:
    principal = runtime.tokens.get(token)
    if principal is None:
        ticket = runtime.tokens.ticket()  # before reading: a change meanwhile is not cached
        async with runtime.session_factory() as session:
            principal = await authenticate(
                session,
                runtime.infra.api_token,
                runtime.infra.access_person,
                token,
                runtime.clock(),
            )
        if principal is None:
            raise Unauthorized("The token is unknown, revoked or expired.")
        runtime.tokens.put(token, principal, ticket=ticket)
    elif principal.expires_at is not None and runtime.clock() >= principal.expires_at:
        raise Unauthorized("The token is unknown, revoked or expired.")
    return principal


async def _signed_in_principal(runtime: Runtime[Any], token: str) -> Principal:
    """A signed-in person. When the people directory has a record of this identity, the record
    wins: its name, roles and sites replace the token's claims, and a deactivated person is
    refused; without a record, the claims decide."""
    try:
        identity = await oidc_verifier(runtime).verify(token)
    except TokenRejected as refusal:
        raise Unauthorized(refusal.public_detail) from None
    except KeysUnavailable:
        raise ServiceUnavailable(
            "The identity provider's signing keys cannot be fetched; retry shortly."
        ) from None
    record = await _person_of_sign_in(runtime, identity.actor_id)
    if record is None:
        return identity.principal()
    if not record.active:
        raise Unauthorized("This person's access has been withdrawn.")
    return Principal(
        token_id=record.id,
        name=record.name,
        roles=record.roles,
        subject=identity.subject,
        sites=record.sites,
        via="oidc",
        person_id=record.id,
        expires_at=identity.expires_at,
    )


async def _person_of_sign_in(runtime: Runtime[Any], sso_key: str) -> PersonRecord | None:
    found, record = runtime.tokens.sign_in(sso_key)
    if found:
        return record if isinstance(record, PersonRecord) else None
    ticket = runtime.tokens.ticket()
    async with runtime.session_factory() as session:
        record = await AccessRepository(session, runtime.infra).person_by_sso_key(sso_key)
    runtime.tokens.put_sign_in(sso_key, record, ticket=ticket)
    return record


_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "required": ["type", "title", "status"],
}


def problem_responses(
    *problems: type[Problem], **described: str
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of the given problem classes: their status, their docstring as the
    description, a problem+json body. ``described`` overrides a description by status
    (``s404="Unknown lead"``)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for problem in problems:
        text = described.get(f"s{problem.status}") or (problem.__doc__ or problem.title)
        responses[problem.status] = {
            "description": f"{text.strip()} (problem+json)",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_SCHEMA}},
        }
    return responses


# Every route behind a role answers these; routers declare them once (``APIRouter(responses=…)``).
AUTH_PROBLEMS = problem_responses(Unauthorized, Forbidden)
