"""A boolean in a request body is ``true`` or ``false``, never ``0``, ``1`` or ``"yes"``, and an
integer is a JSON number, never ``false`` or ``"12"`` (issue 11, item 6: ``PATCH
/v1/sellers/{id}`` took ``"active": 0``; fuzzing found ``POST /v1/sites`` taking
``"fallback_after_minutes": false``; crm's ``"dry_run": 0`` would have erased for real).
pydantic's lax mode converts those; every JSON body of every service types its booleans
``StrictBool`` and its integers ``StrictInt``, and its instants ``shared.instants.Instant``
(aware, 2000-2100: ``9999-12-31T23:59:59-14:00`` overflowed the UTC column, issue 11 item 2).
This test walks the validation schema of every body (nested models, lists and maps included)
of the four apps, and of the bodies a route validates by hand, so a new lax boolean or integer,
or an unbounded instant, fails here (it found the people API's ``active`` and ``expires_at``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import AwareDatetime, BaseModel, StrictBool, StrictInt, TypeAdapter, ValidationError

from ingest.leads.schemas import LeadIn
from shared.instants import Instant
from tests.support.harness import SERVICES, settings_for

# Bodies read and validated by the route itself (to keep a fast path), not by FastAPI.
VALIDATED_BY_HAND: dict[str, list[type[BaseModel]]] = {"ingest": [LeadIn]}


# Fields bounded by their own validator, with the reason.
BOUNDED_BY_HAND: dict[str, dict[str, list[str]]] = {
    # A local time is accepted too (read in the prospect's zone): CallbackIn.sane_year bounds
    # both forms to 2000-2100.
    "qualify": {"PUT /v1/leads/{lead_id}/callback": ["at (not an Instant)"]},
}

_STEPS = {"items_schema": "[]", "values_schema": "{}"}
_NOT_SCHEMAS = frozenset({"cls", "ref", "metadata", "config", "serialization", "default"})


_STRICT_KINDS = frozenset({"bool", "int"})
# The validator of ``shared.instants.Instant`` (aware, 2000-2100): a datetime under it is bounded.
_BOUNDED = TypeAdapter(Instant).core_schema["function"]["function"]


def lax_scalars(schema: Any, path: str = "") -> Iterator[str]:
    """Where a pydantic core schema has a ``bool`` or ``int`` validator without ``strict``, or a
    ``datetime`` one that is not ``Instant``'s, as field paths (``consents{}.granted``)."""
    if isinstance(schema, dict):
        if schema.get("type") == "function-after" and _function(schema) is _BOUNDED:
            return  # an Instant: aware and within 2000-2100
        if schema.get("type") in _STRICT_KINDS and not schema.get("strict"):
            yield path or "<body>"
        if schema.get("type") == "datetime":
            yield f"{path or '<body>'} (not an Instant)"
        for key, value in schema.items():
            if key == "fields" and isinstance(value, dict):
                for name, field in value.items():
                    yield from lax_scalars(field, f"{path}.{name}" if path else name)
            elif key not in _NOT_SCHEMAS:
                yield from lax_scalars(value, path + _STEPS.get(key, ""))
    elif isinstance(schema, list | tuple):
        for item in schema:
            yield from lax_scalars(item, path)


def _function(schema: dict[str, Any]) -> object:
    function = schema.get("function")
    return function.get("function") if isinstance(function, dict) else None


def _bodies(service: str, tmp_path: Path) -> Iterator[tuple[str, TypeAdapter[Any]]]:
    definition = SERVICES[service]
    settings = settings_for(service, database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    app = definition.create_app(settings)
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and route.body_field is not None:
            annotation = route.body_field.field_info.annotation
            assert annotation is not None
            yield f"{sorted(route.methods or ())[0]} {context.path}", TypeAdapter(annotation)
    for model in VALIDATED_BY_HAND.get(service, []):
        yield model.__name__, TypeAdapter(model)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_boolean_and_integer_of_every_request_body_is_strict(
    service: str, tmp_path: Path
) -> None:
    bodies = list(_bodies(service, tmp_path))
    assert bodies, "the walk no longer sees the routes' bodies"
    lax = {name: list(lax_scalars(adapter.core_schema)) for name, adapter in bodies}
    assert {name: paths for name, paths in lax.items() if paths} == BOUNDED_BY_HAND.get(service, {})


def test_the_walk_finds_a_lax_boolean_or_integer_however_deep() -> None:
    class Inner(BaseModel):
        flags: dict[str, bool]
        days: list[StrictInt]

    class Body(BaseModel):
        ok: StrictBool
        items: list[Inner]
        minutes: int | None = None
        since: Instant
        until: AwareDatetime | None = None

    found = list(lax_scalars(TypeAdapter(Body).core_schema))
    assert found == ["items[].flags{}", "minutes", "until (not an Instant)"]
    with pytest.raises(ValidationError):
        TypeAdapter(StrictBool).validate_python(0)
    with pytest.raises(ValidationError):
        TypeAdapter(StrictInt).validate_json("false")
