"""The fixture corpus: raw inputs under fixtures/ and their expected canonical outcomes.

``python -m tests.ingest.corpus`` rewrites every ``*.expected.json`` from today's parsers: run it
after a deliberate parser change and review the diff like code.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ingest.canonical import Ignore, LeadDraft, Outcome, Quarantine
from ingest.sources.email.classifier import parse_email

FIXTURES = Path(__file__).parent / "fixtures"
EMAILS = sorted((FIXTURES / "email").glob("*.eml"))


def describe(outcome: Outcome) -> dict[str, Any]:
    """The comparable form of an outcome (the canonical lead fields, or the reason)."""
    if isinstance(outcome, LeadDraft):
        data = dataclasses.asdict(outcome)
        data["received_at"] = outcome.received_at.isoformat() if outcome.received_at else None
        data["vehicle"] = outcome.vehicle.as_dict()
        return {"outcome": "lead", **data}
    if isinstance(outcome, Ignore):
        return {"outcome": "ignored", "reason": outcome.reason}
    assert isinstance(outcome, Quarantine)
    return {"outcome": "quarantined", "reason": outcome.reason}


def expected_path(path: Path) -> Path:
    return path.with_suffix(".expected.json")


def actual(path: Path) -> list[dict[str, Any]]:
    return [describe(outcome) for outcome in parse_email(path.read_bytes())]


def regenerate() -> None:
    for path in EMAILS:
        text = json.dumps(actual(path), ensure_ascii=False, indent=2, sort_keys=True)
        expected_path(path).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    regenerate()
