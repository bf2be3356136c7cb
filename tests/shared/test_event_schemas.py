"""docs/events/ holds the JSON Schema of every catalogue event, as generated from the code."""

from __future__ import annotations

import json
from pathlib import Path

from shared.events.catalogue import CATALOGUE
from shared.events.schemas import render, schema_documents

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events"


def test_every_event_type_is_versioned_and_documented() -> None:
    documents = schema_documents()
    for event_type, spec in CATALOGUE.items():
        assert event_type.rsplit(".", 1)[-1].startswith("v"), event_type
        name = f"{event_type}.schema.json"
        path = DOCS / name
        assert path.exists(), f"run `make schemas`: {name} is missing"
        assert path.read_text() == render(documents[name]), f"run `make schemas`: {name} is stale"
        assert json.loads(path.read_text())["x-topic"] == spec.topic
    stale = {path.name for path in DOCS.glob("*.schema.json")} - set(documents)
    assert stale == set(), f"schemas of events no longer in the catalogue: {stale}"
