"""CloudEvents 1.0 envelope in Kafka binary content mode.

The attributes travel as ``ce_*`` headers, the data as the JSON message value, the W3C trace
context as a ``traceparent`` header. The key is the subject (lead id or client id).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from shared.clock import utcnow
from shared.redact import SafeError

Headers = list[tuple[str, bytes]]

_REQUIRED = ("id", "source", "type", "specversion")


class EnvelopeError(SafeError, ValueError):
    """A message that is not a valid CloudEvent in binary mode (poison: straight to the DLQ)."""


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    source: str
    type: str
    specversion: str = "1.0"
    time: AwareDatetime = Field(default_factory=utcnow)
    subject: str | None = None
    datacontenttype: str = "application/json"
    traceparent: str | None = None
    data: dict[str, Any]

    def to_headers(self) -> Headers:
        headers: Headers = [
            ("ce_id", self.id.encode()),
            ("ce_source", self.source.encode()),
            ("ce_type", self.type.encode()),
            ("ce_specversion", self.specversion.encode()),
            ("ce_time", self.time.isoformat().encode()),
            ("content-type", self.datacontenttype.encode()),
        ]
        if self.subject is not None:
            headers.append(("ce_subject", self.subject.encode()))
        if self.traceparent is not None:
            headers.append(("traceparent", self.traceparent.encode()))
        return headers

    def to_value(self) -> bytes:
        # orjson: a few times faster than json on the hot path of every event; datetimes still
        # go through str() as before (data is meant to be JSON-mode already).
        return orjson.dumps(self.data, default=str, option=orjson.OPT_PASSTHROUGH_DATETIME)

    def to_key(self) -> bytes | None:
        return self.subject.encode() if self.subject is not None else None

    @classmethod
    def from_message(cls, value: bytes | None, headers: Headers) -> Envelope:
        attributes: dict[str, str] = {}
        try:
            for name, raw in headers:
                text = raw.decode()
                if name.startswith("ce_"):
                    attributes[name[3:]] = text
                elif name == "content-type":
                    attributes["datacontenttype"] = text
                elif name == "traceparent":
                    attributes["traceparent"] = text
        except UnicodeDecodeError as exc:
            raise EnvelopeError("a header is not UTF-8") from exc
        missing = [name for name in _REQUIRED if name not in attributes]
        if missing:
            raise EnvelopeError(f"missing CloudEvents attributes: {', '.join(missing)}")
        if attributes["specversion"] != "1.0":
            raise EnvelopeError("unsupported CloudEvents specversion")
        try:
            data = json.loads(value or b"")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EnvelopeError("the value is not JSON") from exc
        if not isinstance(data, dict):
            raise EnvelopeError("the value is not a JSON object")
        try:
            return cls(data=data, **attributes)  # type: ignore[arg-type]
        except ValidationError as exc:
            fields = ", ".join(str(err["loc"][0]) for err in exc.errors(include_input=False))
            raise EnvelopeError(f"invalid CloudEvents attributes: {fields}") from exc
