"""Direct routes: a hot operation answered by the request middleware (``shared.http``) itself,
beside the FastAPI route of the same method and path, which documents it (OpenAPI, ``x-roles``)
and answers every request the direct route does not take (another media type).

Why: FastAPI's per-request machinery (its exception middleware and exit stacks, route matching
through the included routers, the recursive dependency solve, two more ``send`` wrappers) was
about half of the CPU of ingest's ``POST /v1/leads`` (docs/ingest.md#performance). A direct
route does what that route's dependencies did, explicitly: the same ``RoleRequirement`` object
authenticates the caller (checked at start-up to grant exactly the FastAPI route's roles), the
handler takes the rest from the runtime. Problems it raises are answered as FastAPI's handler
answers them (problem+json, ``instance`` the path); anything else reaches the last resort.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from shared.api import RoleRequirement
from shared.auth import Principal
from shared.errors import Problem, problem_response
from shared.openapi_roles import route_roles

DirectHandler = Callable[[Request, Principal], Awaitable[Response]]


@dataclass(frozen=True)
class DirectRoute:
    method: str  # "POST"
    path: str  # exact; also the route template of the metrics and the access log
    media_type: str  # the request's media type this route takes ("application/json")
    requirement: RoleRequirement  # the one the FastAPI route depends on
    handler: DirectHandler


class DirectRoutes:
    def __init__(self, routes: Sequence[DirectRoute]) -> None:
        self._routes = {(route.method, route.path): route for route in routes}

    def __bool__(self) -> bool:
        return bool(self._routes)

    def find(self, scope: Scope, content_type: str | None) -> DirectRoute | None:
        route = self._routes.get((scope["method"], scope["path"]))
        if route is None or content_type is None:
            return None
        media_type = content_type.split(";", 1)[0].strip().lower()
        return route if media_type == route.media_type else None

    async def answer(self, route: DirectRoute, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = route  # its ``path``: the label of the request metrics and access log
        request = Request(scope, receive)
        try:
            principal = await route.requirement(request)
            response = await route.handler(request, principal)
        except Problem as problem:
            response = problem_response(problem, instance=request.url.path)
        await response(scope, receive, send)

    def check(self, app: FastAPI) -> None:
        """Each direct route has a FastAPI route of the same method and path whose role
        requirements grant exactly the same roles (so that the document tells the truth)."""
        for (method, path), route in self._routes.items():
            granted = [
                route_roles(dependant)
                for context in iter_route_contexts(app.routes)
                if context.path_format == path
                and method in (context.methods or ())
                and isinstance(dependant := getattr(context, "dependant", None), Dependant)
            ]
            if granted != [route.requirement.allowed]:
                raise ValueError(
                    f"direct route {method} {path}: no FastAPI route granting the same roles"
                )
