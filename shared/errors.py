"""RFC 9457 problem details: one exception hierarchy, one renderer, handlers for FastAPI.

Every error a service answers is ``application/problem+json`` with ``type``, ``title``,
``status``, ``detail`` and ``instance``; validation errors add an ``errors`` member naming each
field. Details never quote the input (it may be personal data).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """Base of every error answered as problem+json. Subclasses set status, slug and title."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions


class BadRequest(Problem):
    """The request cannot be understood."""

    status, slug, title = 400, "bad-request", "Bad request"


class Unauthorized(Problem):
    """No valid bearer token."""

    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extensions)


class Forbidden(Problem):
    """The token lacks the role the operation needs."""

    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(Problem):
    """No such resource."""

    status, slug, title = 404, "not-found", "Not found"


class Conflict(Problem):
    """The resource's state does not allow the operation."""

    status, slug, title = 409, "conflict", "Conflict"


class PayloadTooLarge(Problem):
    """The body exceeds the configured limit."""

    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(Problem):
    """The body's content type is not accepted here."""

    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class InvalidRequest(Problem):
    """The body or parameters failed validation."""

    status, slug, title = 422, "validation-error", "Invalid request"


class ServiceUnavailable(Problem):
    """A dependency (database, bus) is down, or the request lost to a concurrent one (retry it
    sooner: ``retry_after_s``)."""

    status, slug, title = 503, "service-unavailable", "Service unavailable"

    def __init__(
        self, detail: str | None = None, *, retry_after_s: int = 5, **extensions: Any
    ) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)}, **extensions)


def problem_body(
    *,
    status: int,
    slug: str,
    title: str,
    detail: str | None,
    instance: str | None,
    extensions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": f"/problems/{slug}", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extensions or {})
    return body


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    return JSONResponse(
        problem_body(
            status=problem.status,
            slug=problem.slug,
            title=problem.title,
            detail=problem.detail,
            instance=instance,
            extensions=problem.extensions,
        ),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=problem.headers,
    )


_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})


def validation_errors(errors: Any, *, location: str = "body") -> list[dict[str, Any]]:
    """pydantic errors without their ``input`` and ``ctx`` (they may quote personal data).

    FastAPI's errors start their ``loc`` with where the value was (``query``, ``path``…);
    errors of a model validated by hand (``Model.model_validate_json(body)``) do not, and are
    placed at ``location``."""
    cleaned = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        where = location
        if loc and loc[0] in _LOCATIONS:
            where, loc = loc[0], loc[1:]
        if error.get("type") == "json_invalid":
            loc = []  # the location is a character position, not a field
        cleaned.append(
            {
                "field": ".".join(loc) or where,
                "location": where,
                "type": error.get("type", "invalid"),
                "message": error.get("msg", "invalid value"),
            }
        )
    return cleaned


def invalid_parameter(
    field: str, message: str, *, location: str = "query", kind: str = "value_error"
) -> InvalidRequest:
    """The 422 problem of one parameter refused by the code rather than by the schema (a phone
    that does not parse, an inverted range…), shaped as FastAPI's own validation errors."""
    return InvalidRequest(
        f"Invalid parameter: {field}",
        errors=[{"field": field, "location": location, "type": kind, "message": message}],
    )


def invalid_fields(errors: Any) -> InvalidRequest:
    """The 422 of FastAPI's validation errors (each ``loc`` starting with where the value was):
    every invalid or missing field named, as the app's handler answers them."""
    cleaned = validation_errors(errors)
    fields = ", ".join(sorted({error["field"] for error in cleaned}))
    return InvalidRequest(f"Invalid or missing fields: {fields}", errors=cleaned)


def undecodable_body() -> InvalidRequest:
    """The 422 of a JSON body that cannot even be decoded (not UTF-8), which FastAPI answers
    400: bad input like any other malformed JSON."""
    return InvalidRequest(
        "The body is not valid JSON.",
        errors=[
            {
                "field": "body",
                "location": "body",
                "type": "json_invalid",
                "message": "JSON decode error",
            }
        ],
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Problems, validation errors and Starlette's HTTP errors as problem+json. Anything else
    is answered by the request middleware's last resort (``shared.last_resort``: 503 for an
    outage, else 500)."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc, instance=request.url.path)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        if _json_body_in_another_type(request, exc):
            return problem_response(
                UnsupportedMediaType("This operation takes an application/json body."),
                instance=request.url.path,
            )
        return problem_response(invalid_fields(exc.errors()), instance=request.url.path)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400 and str(exc.detail) == _BODY_PARSE_ERROR:
            # FastAPI's answer to a JSON body it cannot even decode (not UTF-8): bad input like
            # any other malformed JSON, so the same 422 as FastAPI's own ``json_invalid``.
            return problem_response(undecodable_body(), instance=request.url.path)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        body = problem_body(
            status=exc.status_code,
            slug=_HTTP_SLUGS.get(exc.status_code, "http-error"),
            title=HTTPStatus(exc.status_code).phrase,
            detail=str(exc.detail),
            instance=request.url.path,
        )
        return JSONResponse(
            body, status_code=exc.status_code, media_type=PROBLEM_MEDIA_TYPE, headers=headers
        )

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json`` or any ``application/*+json``, parameters ignored."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _json_body_in_another_type(request: Request, exc: RequestValidationError) -> bool:
    """A route whose body is JSON, called with a body of another declared type: FastAPI hands
    the raw bytes to the model (a 422 about the body); the contract says 415."""
    content_type = request.headers.get("content-type")
    if not content_type or is_json_media_type(content_type):
        return False
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or route.body_field is None:
        return False
    if isinstance(route.body_field.field_info, (params.Form, params.File)):
        return False
    return any(tuple(error.get("loc", ()))[:1] == ("body",) for error in exc.errors())


_BODY_PARSE_ERROR = "There was an error parsing the body"
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at this path (Starlette's 405 names only the first
    route's). Each method is tried against the app's routes as routing would (only on a 405)."""
    allowed = []
    for method in _METHODS:
        probe = {
            "type": "http",
            "method": method,
            "path": request.scope["path"],
            "root_path": request.scope.get("root_path", ""),
            "headers": [],
            "query_string": b"",
        }
        if any(route.matches(probe)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


_HTTP_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
}
