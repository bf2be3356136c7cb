"""Every e-mail of the fixture corpus gives its expected canonical outcome."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ingest.corpus import EMAILS, actual, expected_path


@pytest.mark.parametrize("path", EMAILS, ids=[path.stem for path in EMAILS])
def test_corpus_email_gives_expected_outcome(path: Path) -> None:
    expected = json.loads(expected_path(path).read_text(encoding="utf-8"))
    assert actual(path) == expected


def test_corpus_covers_every_layout_and_outcome() -> None:
    layouts: set[str] = set()
    outcomes: set[str] = set()
    for path in EMAILS:
        for item in json.loads(expected_path(path).read_text(encoding="utf-8")):
            outcomes.add(item["outcome"])
            if item["outcome"] == "lead":
                layouts.add(item["layout"])
    assert outcomes == {"lead", "ignored", "quarantined"}
    assert {
        "leboncoin_form",
        "leboncoin_message",
        "lacentrale_labels",
        "lacentrale_vitrine",
        "lacentrale_xml",
        "adf",
        "generic",
    } <= layouts
