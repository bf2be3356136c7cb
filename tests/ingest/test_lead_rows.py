"""The JSON intake builds its lead row straight from the validated body (``api_lead_row``): it
must be the very row the draft path (``lead_row(draft_from_api(...))``) builds, whatever the
body gives or leaves out."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ingest.leads import service
from ingest.leads.schemas import LeadIn
from tests.support.clock import TUESDAY_11H

BODIES: list[dict[str, Any]] = [
    {"source": "api", "source_ref": "minimal", "contact": {"phone": "06 12 34 56 78"}},
    {
        "source": "leboncoin",
        "source_ref": "  " + "r" * 196 + " ",
        "kind": "message",
        "received_at": "2026-03-01T09:30:00+01:00",
        "contact": {
            "first_name": "Camille",
            "last_name": "Durand",
            "email": "Camille.Durand@Example.FR",
            "phone": "+33 6 98 76 54 32",
        },
        "vehicle": {
            "ad_ref": "A1",
            "url": "https://example.fr/a1",
            "make": "Renault",
            "model": "Clio",
            "year": 2019,
            "price_eur": 0,
            "mileage_km": 120000,
        },
        "message": "Bonjour",
    },
    {
        "source": "api",
        "source_ref": "partial-vehicle",
        "contact": {"full_name": "C. Durand", "email": "c@example.fr"},
        "vehicle": {"model": "Clio", "year": 2019},
    },
]


@pytest.mark.parametrize("body", BODIES, ids=lambda body: body["source_ref"].strip()[:20])
def test_the_api_row_is_the_drafts_row(body: dict[str, Any]) -> None:
    lead_in = LeadIn.model_validate(body)
    fast = service.api_lead_row(lead_in, now=TUESDAY_11H)
    drafted = service.lead_row(service.draft_from_api(lead_in), now=TUESDAY_11H)
    assert uuid.UUID(fast.pop("id")).version == 4
    drafted.pop("id")
    assert fast == drafted
    assert list(fast["vehicle"]) == list(drafted["vehicle"])  # same keys, same order
    assert fast["received_at"].tzinfo is not None
