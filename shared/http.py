"""The one ASGI middleware of every service, around each HTTP request: W3C trace context and
request id, the body-size limit, the input guard (``shared.input_guard``), the last-resort
problem+json answer (``shared.last_resort``), request metrics and the access log; it also
answers the service's direct routes (``shared.direct``) itself.

One middleware rather than one per concern: each layer costs a call, a ``send`` wrapper and
often a ``receive`` wrapper on every request (the stack was a tenth of the JSON intake's CPU).
Plain ASGI (no ``BaseHTTPMiddleware``): no task or memory stream per request, and streaming
and exceptions behave normally.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.direct import DirectRoutes
from shared.errors import PayloadTooLarge, Problem, is_json_media_type, problem_response
from shared.input_guard import refused_in_json, refused_in_target
from shared.last_resort import last_resort_problem
from shared.metrics import ServiceMetrics
from shared.random_ids import random_hex
from shared.tracing import child_of, current_traceparent

log = structlog.get_logger("http")


class _TooLarge(Exception):
    """The body read by the middleware itself went over the limit."""


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: ServiceMetrics,
        max_body_bytes: int,
        direct: DirectRoutes | None = None,
    ) -> None:
        self.app = app
        self.direct = direct or None
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        # Labelled children, looked up once per (method, route, status): ``labels()`` takes a
        # lock and builds its key on every call. Bounded by the app's routes.
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        parent = request_id = declared = content_type = None
        for name, value in scope["headers"]:  # one pass, only the headers read here
            if name == b"traceparent":
                parent = value.decode("latin-1")
            elif name == b"x-request-id":
                request_id = value.decode("latin-1")[:64]
            elif name == b"content-length":
                declared = value
            elif name == b"content-type" and content_type is None:
                content_type = value.decode("latin-1")
        traceparent = child_of(parent)
        request_id = request_id or random_hex(16)
        extra_headers = [
            (b"traceparent", traceparent.encode()),
            (b"x-request-id", request_id.encode()),
        ]
        status = 500
        answered = False

        async def context_send(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
                message["headers"] = [*message.get("headers", ()), *extra_headers]
            await send(message)

        token = current_traceparent.set(traceparent)
        # bind/reset rather than the bound_contextvars() context manager: same effect, without
        # a generator-based context manager on every request.
        bound = structlog.contextvars.bind_contextvars(
            request_id=request_id,
            trace_id=traceparent[3:35],  # ``child_of`` made it valid
        )
        try:
            problem = self._refusal(declared) or refused_in_target(scope)
            if problem is None and is_json_media_type(content_type):
                # Read whole here (the input guard looks into it), handed again to the app.
                try:
                    body = await self._read_body(receive)
                except _TooLarge:
                    problem = self._too_large()
                else:
                    problem = refused_in_json(body)
                    receive = _replay(body, receive)
            elif problem is None:
                receive = self._limited(receive)
            if problem is not None:
                await _answer(problem, scope, receive, context_send)
                return
            direct = self.direct.find(scope, content_type) if self.direct else None
            try:
                if direct is not None:
                    assert self.direct is not None
                    await self.direct.answer(direct, scope, receive, context_send)
                else:
                    await self.app(scope, receive, context_send)
            except Exception as exc:
                if answered:
                    raise  # half an answer is out: only closing the connection can tell the client
                # The last resort: answered, not re-raised, so the keep-alive connection stays
                # usable (Starlette's would re-raise and uvicorn would close it).
                await _answer(last_resort_problem(exc, scope), scope, receive, context_send)
        finally:
            current_traceparent.reset(token)
            self._observe(scope, status, time.perf_counter() - started)
            structlog.contextvars.reset_contextvars(**bound)

    def _refusal(self, declared: bytes | None) -> Problem | None:
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return self._too_large()
        return None

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"The body exceeds {self.max_body_bytes} bytes.")

    async def _read_body(self, receive: Receive) -> bytes:
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _limited(self, receive: Receive) -> Receive:
        """``receive`` counting the body as the app reads it (streamed bodies, e.g. e-mails)."""
        received = 0
        limit = self.max_body_bytes

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI re-raises HTTPException from body reading: rendered as 413.
                    raise HTTPException(413, f"The body exceeds {limit} bytes.")
            return message

        return limited_receive

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


async def _answer(problem: Problem, scope: Scope, receive: Receive, send: Send) -> None:
    await problem_response(problem, instance=scope.get("path"))(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body, read once by the middleware, handed again to the app; then the client's own
    messages (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
