"""``ingest_inputs_total{channel, outcome}`` counts what ingest took in, by outcome, and never
carries anything from the input itself."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.ingest.conftest import IngestFactory
from tests.ingest.corpus import FIXTURES

LEAD = {
    "source": "api",
    "source_ref": "metrics-1",
    "contact": {"full_name": "Léa Fontaine", "phone": "07 81 22 33 44"},
}


def _inputs(exposition: str) -> dict[tuple[str, str], float]:
    return {
        (sample.labels["channel"], sample.labels["outcome"]): sample.value
        for family in text_string_to_metric_families(exposition)
        if family.name == "ingest_inputs"
        for sample in family.samples
        if sample.name == "ingest_inputs_total"
    }


async def test_every_outcome_is_counted_by_channel(ingest_service: IngestFactory) -> None:
    async with ingest_service() as service:
        client = service.client
        for _ in range(2):  # the second is a replay
            assert (await client.post("/v1/leads", json=LEAD)).status_code == 202
        for name in ("ignored_newsletter", "broken_no_contact", "leboncoin_form_html_qp"):
            answer = await client.post(
                "/v1/sources/email",
                content=(FIXTURES / "email" / f"{name}.eml").read_bytes(),
                headers={"Content-Type": "message/rfc822"},
            )
            assert answer.status_code == 202
        exposition = (await client.get("/metrics")).text

    assert _inputs(exposition) == {
        ("api", "accepted"): 1.0,
        ("api", "duplicate"): 1.0,
        ("email", "ignored"): 1.0,
        ("email", "quarantined"): 1.0,
        ("email", "accepted"): 1.0,
    }
    for personal in ("Léa", "Fontaine", "+33781223344", "metrics-1"):
        assert personal not in exposition
