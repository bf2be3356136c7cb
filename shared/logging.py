"""structlog configuration: JSON lines (or console in development) on stderr. Log ids, hashes,
counts and types only: never names, phones or e-mails.

Our own loggers render natively (no stdlib ``LogRecord`` and handler per line: the access log
is written for every request, and the stdlib route cost four times as much); stdlib loggers of
libraries (uvicorn, SQLAlchemy, aiokafka) go through the same processors to the same stream.
Repeated warnings and errors are summarised (``shared.log_limit``)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import orjson
import structlog

from shared.log_limit import RepeatLimiter, StdlibRepeatFilter, structlog_limiter


class StderrLogger:
    """Writes each rendered line to ``sys.stderr`` as it is at the time of the call, so that
    redirections and test capture see it (stderr is line-buffered: one write per line)."""

    def msg(self, message: str) -> None:
        sys.stderr.write(message + "\n")

    debug = info = warning = warn = error = critical = exception = fatal = msg


def _orjson_text(event: Any, *, default: Callable[[Any], Any] | None = None, **_: Any) -> str:
    return orjson.dumps(event, default=default).decode()


def _stderr_logger(*_args: object) -> StderrLogger:
    return StderrLogger()


def configure_logging(*, level: str = "INFO", json: bool = True, service: str = "") -> None:
    shared_processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=_orjson_text)
        if json
        else structlog.dev.ConsoleRenderer()
    )
    limiter = RepeatLimiter()
    structlog.configure(
        processors=[
            structlog_limiter(limiter),
            *shared_processors,
            structlog.processors.format_exc_info,
            renderer,
        ],
        logger_factory=_stderr_logger,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared_processors, structlog.stdlib.ExtraAdder(allow=("suppressed",))],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(StdlibRepeatFilter(limiter))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # Access logs are written by our middleware (route templates, no query strings).
    logging.getLogger("uvicorn.access").handlers = []
    logging.getLogger("uvicorn.access").propagate = False
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    if service:
        structlog.contextvars.bind_contextvars(service=service)
