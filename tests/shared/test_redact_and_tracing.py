"""Error texts carry no input values; trace context is continued or started."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError

from shared import tracing
from shared.redact import SafeError, safe_error_text


class Person(BaseModel):
    phone: int


def test_validation_errors_name_fields_not_values() -> None:
    try:
        Person.model_validate({"phone": "06 12 34 56 78"})
    except ValidationError as exc:
        text = safe_error_text(exc)
    assert "phone" in text
    assert "06 12" not in text


def test_driver_errors_keep_types_not_parameters() -> None:
    exc = IntegrityError("INSERT INTO lead VALUES (?)", ("camille@example.fr",), Exception("dup"))
    text = safe_error_text(exc)
    assert "camille" not in text
    assert "IntegrityError" in text


def test_safe_errors_keep_their_message() -> None:
    assert safe_error_text(SafeError("lead 42 unknown")) == "SafeError: lead 42 unknown"


def test_traceparent_is_continued_or_started() -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    child = tracing.child_of(parent)
    assert tracing.trace_id_of(child) == "0af7651916cd43dd8448eb211c80319c"
    assert child != parent
    fresh = tracing.child_of("garbage")
    assert tracing.is_valid(fresh)
    assert tracing.trace_id_of(fresh) != "0af7651916cd43dd8448eb211c80319c"
