"""ASGI middleware: body-size limit, W3C trace context, request metrics and the access log.

Written as plain ASGI (no BaseHTTPMiddleware) so that streaming and exceptions behave normally.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import PayloadTooLarge, problem_response
from shared.metrics import ServiceMetrics
from shared.tracing import child_of, current_traceparent, trace_id_of

log = structlog.get_logger("http")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        # Labelled children, looked up once per (method, route, status): ``labels()`` takes a
        # lock and builds its key on every call. Bounded by the app's routes.
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        }
        traceparent = child_of(headers.get("traceparent"))
        request_id = headers.get("x-request-id", "")[:64] or uuid.uuid4().hex
        token = current_traceparent.set(traceparent)
        status = {"code": 500}
        started = time.perf_counter()

        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(scope, receive, send, traceparent)
            current_traceparent.reset(token)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # FastAPI re-raises HTTPException from body reading: rendered as 413.
                    raise HTTPException(413, f"The body exceeds {self.max_body_bytes} bytes.")
            return message

        async def tracing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"traceparent", traceparent.encode()),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        # bind/reset rather than the bound_contextvars() context manager: same effect, without
        # a generator-based context manager on every request.
        bound = structlog.contextvars.bind_contextvars(
            request_id=request_id, trace_id=trace_id_of(traceparent)
        )
        try:
            await self.app(scope, limited_receive, tracing_send)
        finally:
            current_traceparent.reset(token)
            self._observe(scope, status["code"], time.perf_counter() - started)
            structlog.contextvars.reset_contextvars(**bound)

    async def _too_large(
        self, scope: Scope, receive: Receive, send: Send, traceparent: str
    ) -> None:
        response = problem_response(
            PayloadTooLarge(f"The body exceeds {self.max_body_bytes} bytes."),
            instance=scope.get("path"),
        )
        response.headers["traceparent"] = traceparent
        await response(scope, receive, send)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route: Any = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        series = self._series.get((method, template, status))
        if series is None:
            service = self.metrics.service
            series = self._series[(method, template, status)] = (
                self.metrics.http_requests.labels(service, method, template, str(status)),
                self.metrics.http_duration.labels(service, method, template),
            )
        requests, duration = series
        requests.inc()
        duration.observe(seconds)
        log.info(
            "http.request",
            method=method,
            route=template,
            status=status,
            duration_ms=round(seconds * 1000, 2),
        )
