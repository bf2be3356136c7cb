"""Publishes who may call each operation in the OpenAPI document: ``x-roles``, the roles that reach
the handler (read from the route's ``require_roles`` dependencies, so it cannot drift from what
is enforced). An operation without ``x-roles`` checks no role (health, metrics, a webhook that
authenticates by signature). ``tests/system/test_authorization_matrix.py`` reads it."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts

from shared.api import AUTH_PROBLEMS, RoleRequirement

ROLES_EXTENSION = "x-roles"


def route_roles(dependant: Dependant) -> frozenset[str] | None:
    """The roles that pass every role requirement of a route (their intersection), or None when
    it has none."""
    allowed: frozenset[str] | None = None
    for requirement in _requirements(dependant):
        allowed = requirement.allowed if allowed is None else allowed & requirement.allowed
    return allowed


def _requirements(dependant: Dependant) -> Iterator[RoleRequirement]:
    for dependency in dependant.dependencies:
        if isinstance(dependency.call, RoleRequirement):
            yield dependency.call
        yield from _requirements(dependency)


def _document_auth_problems(responses: dict[str, Any]) -> None:
    """A route that checks roles answers 401 and 403 (problem+json), whether or not its router
    remembered to say so."""
    for status, documented in AUTH_PROBLEMS.items():
        declared = responses.setdefault(str(status), copy.deepcopy(documented))
        declared.setdefault("content", copy.deepcopy(documented["content"]))


def publish_roles(app: FastAPI) -> Callable[[dict[str, Any]], None]:
    """An OpenAPI hook writing ``x-roles`` (sorted) into every operation that checks roles, and
    documenting its 401 and 403."""

    def hook(document: dict[str, Any]) -> None:
        paths = document.get("paths", {})
        # The routes as served, with the dependencies of the routers that include them.
        for route in iter_route_contexts(app.routes):
            dependant = getattr(route, "dependant", None)
            if not isinstance(dependant, Dependant) or route.path_format not in paths:
                continue
            roles = route_roles(dependant)
            if roles is None:
                continue
            for method in route.methods or ():
                operation = paths[route.path_format].get(method.lower())
                if operation is not None:
                    operation[ROLES_EXTENSION] = sorted(roles)
                    _document_auth_problems(operation.setdefault("responses", {}))

    return hook
