"""The OpenAPI document says what the shared HTTP layer answers on every route, so a client (and
the schema-driven fuzzer) can rely on it: 422 is a problem+json (not FastAPI's default
``HTTPValidationError``, which this API never sends) on every operation, since the input guard
refuses control characters in any path or query; 413 where a body is taken (the body limit);
415 where that body is JSON (another content type); every error documented without a body has
the problem+json one it is sent with."""

from __future__ import annotations

import copy
from typing import Any

from shared.api import problem_responses
from shared.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType, is_json_media_type

_INVALID = problem_responses(InvalidRequest)[422]
_TOO_LARGE = problem_responses(PayloadTooLarge)[413]
_UNSUPPORTED = problem_responses(UnsupportedMediaType)[415]
_FASTAPI_SCHEMAS = ("HTTPValidationError", "ValidationError")
_METHODS = ("get", "put", "post", "delete", "patch", "options", "head")


def document_shared_answers(document: dict[str, Any]) -> None:
    """An OpenAPI hook: the 422, 413 and 415 of every operation, as the shared layer answers."""
    for item in document.get("paths", {}).values():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            if _is_fastapi_default(responses.get("422", {})):
                del responses["422"]  # "Validation Error", application/json: never sent
            _ensure(responses, "422", _INVALID)
            body_types = list(operation.get("requestBody", {}).get("content", {}))
            if body_types:
                _ensure(responses, "413", _TOO_LARGE)
            if any(is_json_media_type(media_type) for media_type in body_types):
                _ensure(responses, "415", _UNSUPPORTED)
            for status, declared in responses.items():
                if status[:1] in {"4", "5"}:  # every error is problem+json, even hand-written
                    declared.setdefault("content", copy.deepcopy(_INVALID["content"]))
    _drop_unused_fastapi_schemas(document)


def _ensure(responses: dict[str, Any], status: str, documented: dict[str, Any]) -> None:
    """``status`` documented, with a problem+json body (a hand-written description is kept)."""
    declared = responses.setdefault(status, copy.deepcopy(documented))
    declared.setdefault("content", copy.deepcopy(documented["content"]))


def _is_fastapi_default(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def _drop_unused_fastapi_schemas(document: dict[str, Any]) -> None:
    schemas = document.get("components", {}).get("schemas", {})
    for name in _FASTAPI_SCHEMAS:
        reference = f"#/components/schemas/{name}"
        still_used = any(
            reference in repr(value)
            for key, value in schemas.items()
            if key not in _FASTAPI_SCHEMAS
        ) or reference in repr(document.get("paths", {}))
        if not still_used:
            schemas.pop(name, None)
