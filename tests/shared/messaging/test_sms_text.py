"""GSM-7 / UCS-2 detection, segment counting and fitting a text plus its opt-out line."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st

from shared.messaging.sms_text import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    fit_sms,
    is_gsm7,
    is_stop_request,
    measure_sms,
    sms_encoding,
)

GSM_BASIC_TEXT = st.text(alphabet=sorted(GSM7_BASIC), max_size=700)
GSM_TEXT = st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION), max_size=700)
ANY_TEXT = st.text(
    alphabet=st.sampled_from([*sorted(GSM7_BASIC), *sorted(GSM7_EXTENSION), "œ", "ê", "😀", "Ç"]),
    max_size=500,
)


def test_french_accents_of_the_gsm_table_stay_gsm7_but_not_all_of_them() -> None:
    assert sms_encoding("Bonjour Camille, votre Clio est prête ? À bientôt") == "UCS-2"  # ê, ô
    assert sms_encoding("Bonjour, la voiture est réservée à votre nom. Ça vous va ?") == "GSM-7"
    assert sms_encoding("Votre Clio est prete : rdv a 17h, Garage Dupont") == "GSM-7"
    assert sms_encoding("é è ù à ì ò Ç É") == "GSM-7"
    assert sms_encoding("cœur") == "UCS-2"  # œ is not in GSM 03.38
    assert sms_encoding("prix 12 000 €") == "GSM-7"  # € is in the extension table


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters count double
        ("€" * 81, "GSM-7", 162, 2),
        ("a" * 152 + "€", "GSM-7", 154, 1),
        ("a" * 159 + "€", "GSM-7", 161, 2),
        ("œ" * 70, "UCS-2", 70, 1),
        ("œ" * 71, "UCS-2", 71, 2),
        ("œ" * 134, "UCS-2", 134, 2),
        ("œ" * 135, "UCS-2", 135, 3),
        ("😀" * 35, "UCS-2", 70, 1),  # outside the BMP: a surrogate pair, two units
        ("😀" * 36, "UCS-2", 72, 2),
    ],
)
def test_measure(text: str, encoding: str, units: int, segments: int) -> None:
    length = measure_sms(text)
    assert (length.encoding, length.units, length.segments) == (encoding, units, segments)


def test_a_two_septet_character_never_straddles_two_parts() -> None:
    # 152 septets then "€" (2): the first part holds 152, "€" starts the second part.
    assert measure_sms("a" * 152 + "€" + "a" * 152).segments == 3
    assert measure_sms("a" * 151 + "€" + "a" * 153).segments == 2
    # The same for a surrogate pair in UCS-2: 66 units then an emoji.
    assert measure_sms("œ" * 66 + "😀" + "œ" * 66).segments == 3
    assert measure_sms("œ" * 65 + "😀" + "œ" * 67).segments == 2


@given(GSM_BASIC_TEXT)
def test_basic_gsm_text_segments_follow_160_153(text: str) -> None:
    length = measure_sms(text)
    assert length.encoding == "GSM-7"
    assert length.units == len(text)
    expected = 0 if not text else 1 if len(text) <= 160 else math.ceil(len(text) / 153)
    assert length.segments == expected


@given(GSM_TEXT)
def test_extension_characters_count_double(text: str) -> None:
    length = measure_sms(text)
    extended = sum(char in GSM7_EXTENSION for char in text)
    assert length.units == len(text) + extended
    if length.units > 160:
        # Greedy packing: at least the plain division, at most one septet lost per part.
        assert math.ceil(length.units / 153) <= length.segments <= math.ceil(length.units / 152)


@given(ANY_TEXT)
def test_one_character_outside_gsm_switches_to_ucs2(text: str) -> None:
    length = measure_sms(text)
    assert length.encoding == ("GSM-7" if is_gsm7(text) else "UCS-2")
    if length.encoding == "UCS-2":
        assert length.units == len(text.encode("utf-16-le")) // 2
        if length.units <= 70:
            assert length.segments == 1
        else:
            assert math.ceil(length.units / 67) <= length.segments <= math.ceil(length.units / 66)


def test_fit_keeps_a_text_that_fits_and_adds_the_opt_out_line() -> None:
    text = "Bonjour Camille, merci pour votre demande sur la Clio. Nous vous appelons demain a 10h."
    assert fit_sms(text, opt_out="STOP au 36111") == f"{text}\nSTOP au 36111"


def test_fit_cuts_at_a_word_with_an_ellipsis_that_keeps_gsm7() -> None:
    text = "Bonjour Camille, " + "merci pour votre demande concernant la voiture. " * 6
    fitted = fit_sms(text, opt_out="STOP au 36111", max_segments=1)
    length = measure_sms(fitted)
    assert length.segments == 1
    assert length.encoding == "GSM-7"
    assert fitted.endswith("...\nSTOP au 36111")
    head = fitted.removesuffix("...\nSTOP au 36111")
    assert text.startswith(head)
    assert text[len(head)] == " "  # cut at a word boundary


def test_fit_in_two_segments_of_ucs2() -> None:
    text = "Bonjour Chloé, votre demande pour la Peugeot 208 a bien été reçue. " * 4
    fitted = fit_sms(text, opt_out="STOP au 36111", max_segments=2)
    assert measure_sms(fitted).segments == 2
    assert fitted.endswith("…\nSTOP au 36111")


def test_fit_refuses_an_opt_out_line_that_cannot_fit() -> None:
    with pytest.raises(ValueError, match="opt-out"):
        fit_sms("Bonjour", opt_out="x" * 161, max_segments=1)


@settings(max_examples=300)
@given(
    ANY_TEXT,
    st.integers(min_value=1, max_value=3),
    st.sampled_from(["STOP au 36111", "STOP SMS au 36173", "Stop: répondez STOP"]),
)
def test_fit_never_exceeds_the_segments_and_always_ends_with_the_opt_out(
    text: str, max_segments: int, opt_out: str
) -> None:
    fitted = fit_sms(text, opt_out=opt_out, max_segments=max_segments)
    assert measure_sms(fitted).segments <= max_segments
    assert fitted.endswith(opt_out)
    if measure_sms(f"{text}\n{opt_out}").segments <= max_segments:
        assert fitted == f"{text}\n{opt_out}"
    else:
        head = fitted.removesuffix(f"\n{opt_out}").removesuffix("...").removesuffix("…")
        assert text.startswith(head)


@pytest.mark.parametrize(
    ("text", "stop"),
    [
        ("STOP", True),
        ("stop", True),
        (" Stop. ", True),
        ("STOP SMS", True),
        ("Arrêt", True),
        ("désabonner", True),
        ("Stop, je ne suis plus intéressé", False),
        ("Bonjour, la voiture est-elle disponible ?", False),
        ("", False),
    ],
)
def test_stop_requests(text: str, stop: bool) -> None:
    assert is_stop_request(text) is stop
