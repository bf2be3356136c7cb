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

A route's path may be a template (``/v1/leads/{lead_id}/claim``): matched segment by segment
(no regex), its parameters in ``scope["path_params"]`` as Starlette puts them (``request.
path_params``), the template the label of the metrics and the access log. A body model is
validated by ``json_model`` as FastAPI validates a body parameter, with the same 422; the query
string by ``query_model`` as FastAPI validates a route's scalar query parameters, with the same
422, the route declaring that model (``query``) so that start-up checks it declares exactly the
FastAPI route's query parameters.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from shared.api import RoleRequirement
from shared.auth import Principal
from shared.errors import Problem, invalid_fields, problem_response, undecodable_body
from shared.openapi_roles import route_roles

DirectHandler = Callable[[Request, Principal], Awaitable[Response]]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class DirectRoute:
    method: str  # "POST"
    # Exact, or a template with whole-segment parameters ("/v1/leads/{lead_id}/claim"); also
    # the route template of the metrics and the access log.
    path: str
    # The request's media type this route takes ("application/json"); None: any request (the
    # route reads no body, a GET or a POST without one).
    media_type: str | None
    requirement: RoleRequirement  # the one the FastAPI route depends on
    handler: DirectHandler
    # The FastAPI route takes a body model: FastAPI decodes the JSON before it checks the
    # caller (a malformed body is a 422 even for an anonymous caller); True does the same.
    json_first: bool = False
    # The model the handler validates the query string with (``query_model``); start-up checks
    # that its fields are the FastAPI route's query parameters (None: the route has none).
    query: type[BaseModel] | None = None
    # (segment index, literal) and (segment index, parameter) of a template, from ``path``.
    _literals: tuple[tuple[int, str], ...] = field(init=False, repr=False, compare=False)
    _params: tuple[tuple[int, str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        literals, params = [], []
        for index, segment in enumerate(self.path.split("/")):
            if segment.startswith("{") and segment.endswith("}"):
                name = segment[1:-1]
                if not name.isidentifier():
                    raise ValueError(f"direct route {self.path}: parameter {name!r}")
                params.append((index, name))
            elif "{" in segment or "}" in segment:
                raise ValueError(f"direct route {self.path}: a parameter is a whole segment")
            else:
                literals.append((index, segment))
        object.__setattr__(self, "_literals", tuple(literals))
        object.__setattr__(self, "_params", tuple(params))

    @property
    def segments(self) -> int:
        return len(self._literals) + len(self._params)

    def match(self, parts: Sequence[str]) -> dict[str, str] | None:
        """The path parameters of a path split at "/" (of ``segments`` parts), or None. A
        parameter is one non-empty segment, as Starlette's ``{name}`` (``[^/]+``)."""
        for index, literal in self._literals:
            if parts[index] != literal:
                return None
        params = {}
        for index, name in self._params:
            if not (value := parts[index]):
                return None
            params[name] = value
        return params


class DirectRoutes:
    def __init__(self, routes: Sequence[DirectRoute]) -> None:
        self._all = tuple(routes)
        self._exact = {(route.method, route.path): route for route in routes if not route._params}
        # Templates by method and number of segments: a request's path is split once.
        self._templates: dict[tuple[str, int], list[DirectRoute]] = {}
        for route in routes:
            if route._params:
                self._templates.setdefault((route.method, route.segments), []).append(route)

    def __bool__(self) -> bool:
        return bool(self._all)

    def find(self, scope: Scope, content_type: str | None) -> DirectRoute | None:
        method, path = scope["method"], scope["path"]
        route = self._exact.get((method, path))
        params: dict[str, str] | None = None
        if route is None and self._templates:
            parts = path.split("/")
            for candidate in self._templates.get((method, len(parts)), ()):
                if (params := candidate.match(parts)) is not None:
                    route = candidate
                    break
        if route is None:
            return None
        if route.media_type is not None:
            if content_type is None:
                return None
            if content_type.split(";", 1)[0].strip().lower() != route.media_type:
                return None
        if params is not None:
            scope["path_params"] = params  # as Starlette's routing would
        return route

    async def answer(self, route: DirectRoute, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = route  # its ``path``: the label of the request metrics and access log
        request = Request(scope, receive)
        try:
            if route.json_first:
                await _decode_json(request)
            principal = await route.requirement(request)
            response = await route.handler(request, principal)
        except Problem as problem:
            response = problem_response(problem, instance=request.url.path)
        await response(scope, receive, send)

    def check(self, app: FastAPI) -> None:
        """Each direct route has a FastAPI route of the same method and path whose role
        requirements grant exactly the same roles (so that the document tells the truth), and
        no other FastAPI route of that method takes a path it takes (a literal where it has a
        parameter); its ``query`` model declares exactly that route's query parameters."""
        contexts = list(iter_route_contexts(app.routes))
        for route in self._all:
            method, path = route.method, route.path
            dependants = [
                dependant
                for context in contexts
                if context.path_format == path
                and method in (context.methods or ())
                and isinstance(dependant := getattr(context, "dependant", None), Dependant)
            ]
            if [route_roles(dependant) for dependant in dependants] != [route.requirement.allowed]:
                raise ValueError(
                    f"direct route {method} {path}: no FastAPI route granting the same roles"
                )
            if _query_parameters(dependants[0]) != _model_parameters(route.query):
                raise ValueError(
                    f"direct route {method} {path}: its query model is not the FastAPI route's "
                    "query parameters"
                )
            for context in contexts:
                parts = (context.path_format or "").split("/")
                if (
                    context.path_format != path
                    and method in (context.methods or ())
                    and len(parts) == route.segments
                    and route.match(parts) is not None
                ):
                    raise ValueError(
                        f"direct route {method} {path} would take {context.path_format}'s paths"
                    )


QueryParameter = tuple[str, Any, tuple[Any, ...], Any]
"""(name, annotation, constraints, default) of a query parameter: what validates it."""


def _query_parameters(dependant: Dependant) -> list[QueryParameter]:
    """The query parameters of a FastAPI route, its dependencies' included, in FastAPI's order."""
    parameters = [
        (field.alias, field.field_info.annotation, tuple(field.field_info.metadata), field.default)
        for field in dependant.query_params
    ]
    for dependency in dependant.dependencies:
        parameters.extend(_query_parameters(dependency))
    return parameters


def _model_parameters(model: type[BaseModel] | None) -> list[QueryParameter]:
    fields = model.model_fields if model is not None else {}
    return [
        (info.alias or name, info.annotation, tuple(info.metadata), info.default)
        for name, info in fields.items()
    ]


def query_model(request: Request, model: type[M]) -> M:
    """The query string as ``model``, validated as FastAPI validates a route's scalar query
    parameters declared as ``model``'s fields (``DirectRoute.query``, checked at start-up): each
    from the last value of its name (an empty value is a value), others ignored, Python-mode
    validation, errors under ``query``; the problem is the app's 422."""
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        raise invalid_fields(
            [{**error, "loc": ("query", *error["loc"])} for error in errors]
        ) from None


async def _decode_json(request: Request) -> None:
    """The JSON body decoded as FastAPI decodes a body parameter's, before it checks the
    caller, with the same problems; ``request.json()`` keeps it for the handler."""
    try:
        if await request.body():
            await request.json()
    except json.JSONDecodeError as exc:
        raise invalid_fields(
            [{"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error"}]
        ) from None
    except Exception:  # e.g. not UTF-8: FastAPI's 400, answered as the app's handler does
        raise undecodable_body() from None


async def json_model(request: Request, model: type[M]) -> M:
    """The JSON body as ``model``, validated as FastAPI validates a route's (single, not
    embedded) body parameter: Python-mode validation of the decoded document, errors under
    ``body``, an empty body a missing one; the problem is the app's 422."""
    await _decode_json(request)  # done already when the route is ``json_first``
    if not await request.body():
        raise invalid_fields([{"type": "missing", "loc": ("body",), "msg": "Field required"}])
    document: Any = await request.json()
    try:
        return model.model_validate(document, from_attributes=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        raise invalid_fields(
            [{**error, "loc": ("body", *error["loc"])} for error in errors]
        ) from None
