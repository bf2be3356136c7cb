"""Generate the JSON Schemas of the catalogue into docs/events/.

Run: ``python -m shared.events.schemas [folder]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from shared.events.catalogue import CATALOGUE

DEFAULT_DIR = Path("docs/events")


def schema_documents() -> dict[str, dict[str, Any]]:
    """File name → JSON Schema of one event type (the ``data`` of its envelope)."""
    documents: dict[str, dict[str, Any]] = {}
    for spec in CATALOGUE.values():
        schema = spec.payload.model_json_schema()
        schema["$id"] = f"urn:vo-leads:event:{spec.type}"
        schema["title"] = spec.type
        schema["description"] = spec.description
        schema["x-topic"] = spec.topic
        schema["x-producer"] = spec.producer
        schema["x-personal-data"] = spec.personal_data
        documents[f"{spec.type}.schema.json"] = schema
    return documents


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path = DEFAULT_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schema_documents().items():
        path = directory / name
        path.write_text(render(schema))
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR):
        sys.stdout.write(f"{path}\n")
