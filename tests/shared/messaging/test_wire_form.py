"""The e-mail written as wire bytes (``render_email``): parsed back by the standard library, every
header and both bodies are exactly what was given; 7-bit, CRLF, lines within RFC 5322."""

from __future__ import annotations

import email
import email.header
import email.utils
import re
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from shared.messaging.lead_tokens import LeadTokens
from shared.messaging.outgoing_email import Unsubscribe, as_email_message, render_email
from shared.messaging.wire_form import (
    OutgoingEmail,
    address_header,
    encoded_words,
    quoted_printable,
    text_header,
)

TOKENS = LeadTokens("wire-test-key")
LEAD = "0b9e4c1a-7f3d-4c1e-9a5b-2d6f8e0a1b2c"
KEY = "k" * 64  # the longest message key: a Message-ID of 120+ characters
TEXT = "Bonjour Hélène,\n\nMerci pour votre intérêt pour la Citroën C3 ; à très vite !\n\nGaëlle"
HTML = '<p>Bonjour <b>Hélène</b>, prix &lt; 10 000 € ; <a href="https://x.fr/?a=1&b=2">ici</a></p>'
SUBJECT = "Votre demande : Citroën C3 (réf. AD-1) — réponse de Gaëlle, conseillère commerciale"
DATE = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)
UNSUBSCRIBE = Unsubscribe.for_lead(
    TOKENS, LEAD, mailbox="desabonnement@vo-leads.test", url_base="https://leads.example.fr/v1/u"
)


def _render(**overrides: Any) -> OutgoingEmail:
    arguments: dict[str, Any] = {
        "tokens": TOKENS,
        "lead_id": LEAD,
        "message_key": KEY,
        "sender": '"Garage Dupont & Fils, Automobiles" <concession@vo-leads.test>',
        "to": "Hélène Gaël-Müller <prospect@vo-leads.test>",
        "reply_mailbox": "concession@vo-leads.test",
        "subject": SUBJECT,
        "text": TEXT,
        "html": HTML,
        "date": DATE,
        "unsubscribe": UNSUBSCRIBE,
        "in_reply_to": "<abc.def@mail.leboncoin.fr>",
        "references": ["<root@mail.leboncoin.fr>"],
        "auto_reply": True,
    }
    return render_email(**(arguments | overrides))


def _parse(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _wire_rules(data: bytes) -> None:
    text = data.decode("ascii")  # 7-bit
    assert "\n" not in text.replace("\r\n", "")  # only CRLF line ends
    assert "\r" not in text.replace("\r\n", "")
    lines = text.split("\r\n")
    assert max(len(line) for line in lines) <= 998
    head = text.split("\r\n\r\n", 1)[0]
    for line in head.split("\r\n"):
        assert line.strip(), "a folded header line holds more than blanks"


def test_every_header_and_both_bodies_parse_back_to_the_input() -> None:
    rendered = _render()
    _wire_rules(rendered.data)
    parsed = _parse(rendered.data)
    message_id = TOKENS.message_id(LEAD, message_key=KEY, domain="vo-leads.test")
    assert rendered.message_id == message_id
    assert parsed["Message-ID"] == message_id
    assert parsed["Date"].datetime == DATE
    assert parsed["Date"] == "Wed, 02 Dec 2026 10:30:00 +0000"
    [sender] = parsed["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (
        "Garage Dupont & Fils, Automobiles",
        "concession@vo-leads.test",
    )
    [to] = parsed["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Hélène Gaël-Müller", "prospect@vo-leads.test")
    assert parsed["Reply-To"] == TOKENS.reply_address(LEAD, mailbox="concession@vo-leads.test")
    assert parsed["Subject"] == SUBJECT
    assert parsed["In-Reply-To"] == "<abc.def@mail.leboncoin.fr>"
    assert parsed["References"] == "<root@mail.leboncoin.fr> <abc.def@mail.leboncoin.fr>"
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert " ".join(str(parsed["List-Unsubscribe"]).split()) == UNSUBSCRIBE.header()
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed.defects == []
    plain, html = parsed.iter_parts()
    assert (plain.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert plain["Content-Transfer-Encoding"] == "quoted-printable"
    assert plain.get_content_charset() == "utf-8"
    assert plain.get_content() == (TEXT + "\n").replace("\n", "\r\n")
    assert html.get_content() == HTML + "\r\n"
    assert (rendered.sender, rendered.recipients) == (
        "concession@vo-leads.test",
        ("prospect@vo-leads.test",),
    )


def test_a_long_message_id_stays_whole_on_one_line() -> None:
    rendered = _render(message_id_domain="relay." + "x" * 30 + ".vo-leads.test")
    assert len(rendered.message_id) >= 120
    lines = rendered.data.decode("ascii").split("\r\n")
    assert f"Message-ID: {rendered.message_id}" in lines
    assert _parse(rendered.data)["Message-ID"] == rendered.message_id


def test_long_headers_fold_at_spaces_within_78_characters_when_they_can() -> None:
    head = _render().data.decode("ascii").split("\r\n\r\n", 1)[0]
    for line in head.split("\r\n"):
        if len(line) > 78:  # only an unbreakable token may pass 78
            longest = max(line.split(" "), key=len)
            assert len(longest) > 78 - len("List-Unsubscribe: "), line
    # Every encoded word is at most 75 characters (RFC 2047).
    assert all(len(word) <= 75 for word in re.findall(r"=\?[^?]+\?q\?[^?]*\?=", head))
    assert "\r\nSubject: =?utf-8?q?Votre_demande_=3A_Citro=C3=ABn_C3_" in head


def test_without_options_there_are_no_optional_headers() -> None:
    parsed = _parse(
        _render(unsubscribe=None, in_reply_to=None, references=[], auto_reply=False).data
    )
    for name in ("List-Unsubscribe", "List-Unsubscribe-Post", "Auto-Submitted"):
        assert parsed[name] is None
    assert parsed["In-Reply-To"] is None
    assert parsed["References"] is None


def test_a_mailto_only_list_unsubscribe_without_one_click() -> None:
    parsed = _parse(_render(unsubscribe=None, list_unsubscribe="<mailto:u@vo-leads.test>").data)
    assert parsed["List-Unsubscribe"] == "<mailto:u@vo-leads.test>"
    assert parsed["List-Unsubscribe-Post"] is None


def test_html_from_text_when_none_given_and_the_boundary_is_random() -> None:
    first, second = _render(html=None), _render(html=None)
    html = _parse(first.data).get_body(("html",))
    assert html is not None
    assert "<p>Merci pour votre intérêt pour la Citroën C3 ; à très vite !</p>" in (
        html.get_content()
    )
    boundary = _parse(first.data).get_boundary()
    assert boundary is not None
    assert boundary != _parse(second.data).get_boundary()


def test_the_same_message_as_an_email_message() -> None:
    rendered = _render()
    built = as_email_message(
        render_email(
            tokens=TOKENS,
            lead_id=LEAD,
            message_key=KEY,
            sender='"Garage Dupont & Fils, Automobiles" <concession@vo-leads.test>',
            to="Hélène Gaël-Müller <prospect@vo-leads.test>",
            reply_mailbox="concession@vo-leads.test",
            subject=SUBJECT,
            text=TEXT,
            html=HTML,
            date=DATE,
            unsubscribe=UNSUBSCRIBE,
            in_reply_to="<abc.def@mail.leboncoin.fr>",
            references=["<root@mail.leboncoin.fr>"],
            auto_reply=True,
        )
    )
    parsed = _parse(rendered.data)
    assert [(name, str(value)) for name, value in built.items()][:-2] == [
        (name, str(value)) for name, value in parsed.items()
    ][:-2]  # all but Content-Type (its boundary is random) and MIME-Version's order
    assert built["Subject"] == SUBJECT


def test_header_values_with_line_breaks_are_refused() -> None:
    with pytest.raises(ValueError, match="linefeed"):
        _render(subject="Bonjour\r\nBcc: victim@example.com")
    with pytest.raises(ValueError, match="linefeed"):
        address_header("To", "Hélène\r\nBcc: victim@example.com", "prospect@vo-leads.test")
    with pytest.raises(ValueError, match="linefeed"):
        text_header("In-Reply-To", "<a@b.fr>\nBcc: victim@example.com")


def test_a_non_ascii_address_is_refused() -> None:
    with pytest.raises(ValueError, match="non-ASCII"):
        _render(to="Hélène <hélène@vo-leads.test>")


def test_text_looking_like_an_encoded_word_is_encoded_not_decoded() -> None:
    subject = "Prix =?utf-8?q?10_000?= net"
    assert _parse(_render(subject=subject).data)["Subject"] == subject


def test_an_ascii_display_name_with_specials_is_quoted() -> None:
    line = address_header("From", 'Dupont "Auto", Lyon', "a@vo-leads.test")
    assert line == 'From: "Dupont \\"Auto\\", Lyon" <a@vo-leads.test>\r\n'
    assert address_header("From", "Garage  Dupont", "a@vo-leads.test") == (
        'From: "Garage  Dupont" <a@vo-leads.test>\r\n'
    )
    assert address_header("From", "Garage Dupont", "a@vo-leads.test") == (
        "From: Garage Dupont <a@vo-leads.test>\r\n"
    )


def test_an_unbreakable_subject_past_998_characters_becomes_encoded_words() -> None:
    subject = "x" * 1200
    line = text_header("Subject", subject)
    assert max(len(part) for part in line.split("\r\n")) <= 78
    assert _parse(_render(subject=subject).data)["Subject"] == subject


def test_encoded_words_never_split_a_character() -> None:
    words = encoded_words("é" * 40 + "😀" * 10, first_room=60)
    assert len(words[0]) <= 60
    assert all(len(word) <= 75 for word in words)
    for word in words:
        email.header.decode_header(word)[0][0].decode("utf-8")  # each word decodes alone


def test_quoted_printable_lines_and_final_line_break() -> None:
    encoded = quoted_printable("a" * 200 + "\r\nfin  \nété\r")
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
    assert encoded.endswith(b"\r\n")
    assert b"\n" not in encoded.replace(b"\r\n", b"")


def _raw_to(data: bytes) -> str:
    raw = email.message_from_bytes(data, policy=policy.compat32)["To"]
    assert isinstance(raw, str)
    return raw.replace("\r\n", "")


def _display_name_words(data: bytes) -> int:
    return _raw_to(data).count("=?utf-8?q?")


def _display_name(data: bytes) -> str:
    """The display name as RFC 2047 reads it: blanks between two encoded words are not text.
    (The stdlib's phrase parser keeps them: it splits its own long display names the same way.)"""
    name, _ = email.utils.parseaddr(_raw_to(data))
    return str(email.header.make_header(email.header.decode_header(name)))


_header_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=300
)


@settings(max_examples=200, deadline=None)
@given(subject=_header_text, name=_header_text, text=st.text(max_size=2000))
def test_any_subject_display_name_and_body_round_trip(subject: str, name: str, text: str) -> None:
    # The stdlib reads leading/trailing blanks of a header value as folding, not as content.
    subject = subject.strip(" \t")
    rendered = render_email(
        tokens=TOKENS,
        lead_id=LEAD,
        message_key="m1",
        sender="concession@vo-leads.test",
        to=email.headerregistry.Address(display_name=name, addr_spec="p@vo-leads.test"),
        reply_mailbox="concession@vo-leads.test",
        subject=subject,
        text=text,
        html=text,
        date=DATE,
    )
    _wire_rules(rendered.data)
    parsed = _parse(rendered.data)
    assert parsed["Subject"] == subject
    [to] = parsed["To"].addresses
    assert to.addr_spec == "p@vo-leads.test"
    assert _display_name(rendered.data) == name.strip(" \t")
    if _display_name_words(rendered.data) <= 1 and name.isprintable():
        assert to.display_name == name.strip(" \t")
    # Like ``set_content``: every line break a CRLF, one at the end.
    expected = b"".join(line + b"\r\n" for line in text.encode("utf-8").splitlines()) or b"\r\n"
    plain, html = parsed.iter_parts()
    assert plain.get_payload(decode=True) == expected
    assert html.get_payload(decode=True) == expected
