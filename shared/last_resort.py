"""The answer to an exception no handler took: a problem+json 503 with ``Retry-After`` when the
database or the bus is down (5 s) or the transaction lost to a concurrent one (PostgreSQL
serialization failure or deadlock: 1 s), else a problem+json 500; either way the connection stays
usable.

Starlette's own last resort (``ServerErrorMiddleware``) answers and then re-raises, so that the
server logs it; uvicorn then closes the keep-alive connection under the client's next request.
The request middleware (``shared.http``) answers with ``last_resort_problem`` and does not
re-raise; the error is logged here (type, route and code locations, never the message, which
may quote personal data).
"""

from __future__ import annotations

import traceback
from typing import Any

import structlog
from starlette.types import Scope

from shared.errors import Problem, ServiceUnavailable
from shared.outage import is_contention, is_outage
from shared.redact import safe_error_text

log = structlog.get_logger("http")

_FRAMES = 5


def last_resort_problem(exc: Exception, scope: Scope) -> Problem:
    """The answer to ``exc``, which no handler took (logged here, without its message)."""
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
