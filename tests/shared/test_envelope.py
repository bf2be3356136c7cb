"""CloudEvents binary mode: headers and value round-trip; malformed messages are refused."""

from __future__ import annotations

import json

import pytest

from shared.events import Envelope, EnvelopeError


def test_round_trip_through_headers_and_value() -> None:
    envelope = Envelope(
        source="/vo-leads/test",
        type="lead.received.v1",
        subject="lead-1",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        data={"lead_id": "lead-1", "n": 3},
    )
    headers = envelope.to_headers()
    names = [name for name, _ in headers]
    assert {"ce_id", "ce_source", "ce_type", "ce_specversion", "ce_time", "ce_subject"} <= set(
        names
    )
    assert "traceparent" in names
    assert json.loads(envelope.to_value()) == {"lead_id": "lead-1", "n": 3}
    assert envelope.to_key() == b"lead-1"
    assert Envelope.from_message(envelope.to_value(), headers) == envelope


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (b"{}", [("ce_source", b"s"), ("ce_type", b"t"), ("ce_specversion", b"1.0")], "id"),
        (
            b"not json",
            [("ce_id", b"1"), ("ce_source", b"s"), ("ce_type", b"t"), ("ce_specversion", b"1.0")],
            "JSON",
        ),
        (
            b"[1]",
            [("ce_id", b"1"), ("ce_source", b"s"), ("ce_type", b"t"), ("ce_specversion", b"1.0")],
            "object",
        ),
        (
            b"{}",
            [("ce_id", b"1"), ("ce_source", b"s"), ("ce_type", b"t"), ("ce_specversion", b"0.3")],
            "specversion",
        ),
        (b"{}", [("ce_id", b"\xff"), ("ce_source", b"s")], "UTF-8"),
    ],
)
def test_malformed_messages_raise_envelope_error(
    value: bytes, headers: list[tuple[str, bytes]], reason: str
) -> None:
    with pytest.raises(EnvelopeError, match=reason):
        Envelope.from_message(value, headers)
