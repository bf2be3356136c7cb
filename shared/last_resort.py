"""The answer to an exception no handler took: a problem+json 503 with ``Retry-After`` when the
database or the bus is down (5 s) or the transaction lost to a concurrent one (PostgreSQL
serialization failure or deadlock: 1 s), else a problem+json 500; either way the connection stays
usable.

Starlette's own last resort (``ServerErrorMiddleware``) answers and then re-raises, so that the
server logs it; uvicorn then closes the keep-alive connection under the client's next request.
This middleware answers and does not re-raise: it logs the error itself (type, route and code
locations, never the message, which may quote personal data).
"""

from __future__ import annotations

import traceback
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import Problem, ServiceUnavailable, problem_response
from shared.outage import is_contention, is_outage
from shared.redact import safe_error_text

log = structlog.get_logger("http")

_FRAMES = 5


class LastResortMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except Exception as exc:
            if started:
                raise  # half an answer is out: only closing the connection can tell the client
            response = problem_response(_problem_for(exc, scope), instance=scope.get("path"))
            await response(scope, receive, send)


def _problem_for(exc: Exception, scope: Scope) -> Problem:
    route = _route_template(scope)
    if is_outage(exc):
        # The database or the bus is unreachable or dropped the connection: retry, not a bug.
        log.warning("http.dependency_unavailable", route=route, error=safe_error_text(exc))
        return ServiceUnavailable("A dependency (database or bus) is unavailable; retry shortly.")
    if is_contention(exc):
        # Serialization failure or deadlock victim: the same request, sent again, succeeds.
        log.warning("http.contention", route=route, error=safe_error_text(exc))
        return ServiceUnavailable(
            "The request conflicted with a concurrent one; retry it.", retry_after_s=1
        )
    log.error(
        "http.unhandled_error",
        route=route,
        error_type=type(exc).__name__,
        where=_where(exc),
    )
    return Problem()


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def _where(exc: BaseException) -> list[str]:
    """The innermost code locations of ``exc`` (file:line function), without any value."""
    frames = traceback.extract_tb(exc.__traceback__)[-_FRAMES:]
    return [f"{frame.filename}:{frame.lineno} {frame.name}" for frame in frames]
