"""Property tests: the parsers never raise on arbitrary input; they quarantine instead."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ingest.canonical import Ignore, LeadDraft, Quarantine
from ingest.sources.adf.parser import AdfSyntaxError, parse_adf
from ingest.sources.email.classifier import parse_email
from ingest.sources.email.mime import html_to_text
from ingest.sources.facebook.fetcher import parse_graph_body
from ingest.sources.facebook.notifications import read_notification
from tests.ingest.corpus import EMAILS

OUTCOMES = (LeadDraft, Ignore, Quarantine)
FAST = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

CORPUS = [path.read_bytes() for path in EMAILS]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=40,
)


@FAST
@given(st.binary(max_size=4000))
def test_email_parser_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    outcomes = parse_email(raw)
    assert outcomes
    assert all(isinstance(outcome, OUTCOMES) for outcome in outcomes)


@FAST
@given(
    st.sampled_from(CORPUS),
    st.integers(min_value=0, max_value=10_000),
    st.binary(min_size=1, max_size=40),
)
def test_email_parser_never_raises_on_damaged_corpus(base: bytes, at: int, junk: bytes) -> None:
    at = at % (len(base) + 1)
    for damaged in (base[:at] + junk + base[at:], base[:at], base[:at] + junk):
        outcomes = parse_email(damaged)
        assert outcomes
        assert all(isinstance(outcome, OUTCOMES) for outcome in outcomes)


@FAST
@given(
    st.text(
        alphabet=st.sampled_from(list("<>/=\"' abcdefghijklmnopqrstuvwxyz:;-&#\n\u00e9\u20ac")),
        max_size=300,
    )
)
def test_html_to_text_never_raises(html: str) -> None:
    assert isinstance(html_to_text(html), str)


@FAST
@given(st.binary(max_size=3000) | st.text(max_size=2000).map(lambda text: text.encode()))
def test_adf_parser_raises_only_its_syntax_error(raw: bytes) -> None:
    try:
        outcomes = parse_adf(raw)
    except AdfSyntaxError:
        return
    assert all(isinstance(outcome, OUTCOMES) for outcome in outcomes)


ADF_PARTS = st.lists(
    st.sampled_from(
        [
            "<prospect>", "</prospect>", "<customer>", "</customer>", "<contact>", "</contact>",
            '<name part="full">Jean Dupont</name>', "<email>jean@exemple.fr</email>",
            "<phone>06 12 34 56 78</phone>", "<phone>12</phone>", "<vehicle>", "</vehicle>",
            "<price>12 990 €</price>", "<odometer units='mi'>abc</odometer>", "<year>99999</year>",
            "<requestdate>2026-13-45</requestdate>", '<id source="x">1</id>', "<comments/>",
        ]
    ),
    max_size=25,
)  # fmt: skip


@FAST
@given(ADF_PARTS)
def test_adf_parser_never_raises_on_shuffled_elements(parts: list[str]) -> None:
    try:
        outcomes = parse_adf("<adf>" + "".join(parts) + "</adf>")
    except AdfSyntaxError:
        return
    assert outcomes
    assert all(isinstance(outcome, OUTCOMES) for outcome in outcomes)


@FAST
@given(json_values)
def test_facebook_notification_reader_never_raises(document: Any) -> None:
    read_notification(document)
    read_notification({"object": "page", "entry": document})
    read_notification({"object": "page", "entry": [document]})
    read_notification({"entry": [{"changes": [document], "messaging": [document]}]})
    # A container of another shape than Meta documents is named, never iterated blindly.
    odd = read_notification({"entry": [{"changes": document, "messaging": document}]})
    if document is not None and not isinstance(document, list):
        assert odd.problems == ["entry[0].changes: not a list", "entry[0].messaging: not a list"]


@FAST
@given(json_values)
def test_graph_lead_mapper_never_raises(document: Any) -> None:
    raw = json.dumps(document).encode()
    assert isinstance(parse_graph_body(raw), OUTCOMES)
    assert isinstance(parse_graph_body(raw, leadgen_id="1"), OUTCOMES)
    wrapped = json.dumps(
        {"id": "1", "field_data": [document, {"name": "email", "values": document}]}
    )
    assert isinstance(parse_graph_body(wrapped.encode()), OUTCOMES)


def test_xml_bombs_and_dtds_are_refused() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;">]><adf><prospect>&lol2;</prospect></adf>'
    )
    with pytest.raises(AdfSyntaxError):
        parse_adf(bomb)
    external = '<?xml version="1.0"?><!DOCTYPE adf SYSTEM "file:///etc/passwd"><adf/>'
    with pytest.raises(AdfSyntaxError):
        parse_adf(external)
