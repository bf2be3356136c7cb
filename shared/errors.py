"""RFC 9457 problem details: one exception hierarchy, one renderer, handlers for FastAPI.

Every error a service answers is ``application/problem+json`` with ``type``, ``title``,
``status``, ``detail`` and ``instance``; validation errors add an ``errors`` member naming each
field. Details never quote the input (it may be personal data).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger(__name__)

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
    """A dependency (database, bus) is down."""

    status, slug, title = 503, "service-unavailable", "Service unavailable"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, headers={"Retry-After": "5"}, **extensions)


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


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    """pydantic errors without their ``input`` and ``ctx`` (they may quote personal data)."""
    cleaned = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        field_path = [part for part in location if part not in ("body", "query", "path", "header")]
        if error.get("type") == "json_invalid":
            field_path = []  # the location is a character position, not a field
        field = ".".join(field_path) or (location[0] if location else "body")
        cleaned.append(
            {
                "field": field,
                "location": location[0] if location else "body",
                "type": error.get("type", "invalid"),
                "message": error.get("msg", "invalid value"),
            }
        )
    return cleaned


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc, instance=request.url.path)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = validation_errors(exc.errors())
        fields = ", ".join(sorted({error["field"] for error in errors}))
        return problem_response(
            InvalidRequest(f"Invalid or missing fields: {fields}", errors=errors),
            instance=request.url.path,
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        body = problem_body(
            status=exc.status_code,
            slug=_HTTP_SLUGS.get(exc.status_code, "http-error"),
            title=HTTPStatus(exc.status_code).phrase,
            detail=str(exc.detail),
            instance=request.url.path,
        )
        return JSONResponse(
            body,
            status_code=exc.status_code,
            media_type=PROBLEM_MEDIA_TYPE,
            headers=dict(exc.headers or {}),
        )

    async def on_database_down(request: Request, exc: Exception) -> JSONResponse:
        # The database is unreachable or dropped the connection: a 503 to retry, not a 500.
        log.warning("http.database_unavailable", error_type=type(exc).__name__)
        return problem_response(
            ServiceUnavailable("The database is unavailable; retry shortly."),
            instance=request.url.path,
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("http.unhandled_error", error_type=type(exc).__name__, path=request.url.path)
        return problem_response(Problem(), instance=request.url.path)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(OperationalError, on_database_down)
    app.add_exception_handler(InterfaceError, on_database_down)
    app.add_exception_handler(ConnectionError, on_database_down)  # refused before any driver
    app.add_exception_handler(Exception, on_unexpected)


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
