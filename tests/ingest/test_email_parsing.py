"""Focused tests of the e-mail parsers (MIME helpers, classifier, La Centrale and contact rules);
the fixture corpus (test_email_corpus.py) covers whole messages."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ingest.canonical import Ignore, LeadDraft, Quarantine
from ingest.canonical.contacts import phones_in_text
from ingest.sources.email import layouts
from ingest.sources.email.classifier import parse_email
from ingest.sources.email.mime import (
    InboundEmail,
    decode_header,
    html_fragment_text,
    html_to_text,
    parse_mime,
)


def html_mail(html: str, subject: str = "Demande de contact depuis votre vitrine") -> InboundEmail:
    text = html_to_text(html)
    return InboundEmail(
        message_id="m-1@lacentrale.fr",
        from_addr="no_reply@lacentrale.fr",
        subject=subject,
        text=text,
        html=html,
        html_text=text,
    )


def lead(outcome: object) -> LeadDraft:
    assert isinstance(outcome, LeadDraft), outcome
    return outcome


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("Nouveau message pour votre\r\n annonce E1", "Nouveau message pour votre annonce E1"),
        ("Nouveau message pour votre\n\tannonce", "Nouveau message pour votre\tannonce"),
        ("PEUGEOT 3008 II 1.5 BLUEHDI\r\n 130 S&S", "PEUGEOT 3008 II 1.5 BLUEHDI 130 S&S"),
        ("=?utf-8?q?Rapport_appels_manqu?=\r\n =?utf-8?q?=C3=A9s?=", "Rapport appels manqués"),
        ("=?utf-8?q?ligne_1=0Aligne_2?=", "ligne 1 ligne 2"),
        ("caf\udcc3\udca9\r\n cr\udcc3\udca8me", "café crème"),  # raw UTF-8 bytes (RFC 6532)
        ("caf\udce9", "café"),  # raw cp1252 bytes
    ],
)
def test_decode_header_unfolds_and_decodes(raw: str, decoded: str) -> None:
    assert decode_header(raw) == decoded


def test_every_header_is_unfolded() -> None:
    mail = parse_mime(
        b"From: La Centrale\r\n <no_reply@lacentrale.fr>\r\n"
        b"Subject: Nouveau message pour votre\r\n annonce E111222333 - PEUGEOT 3008 II\r\n"
        b" 1.5 BLUEHDI 130\r\nDate: Tue, 20 Jan 2026\r\n 09:14:52 +0100\r\n\r\nBonjour"
    )
    assert mail.subject == (
        "Nouveau message pour votre annonce E111222333 - PEUGEOT 3008 II 1.5 BLUEHDI 130"
    )
    assert mail.from_addr == "no_reply@lacentrale.fr"
    assert mail.date is not None
    assert all("\n" not in value and "\r" not in value for value in mail.headers.values())


@pytest.mark.parametrize(
    ("fragment", "text"),
    [
        ("  M. J&eacute;r&ocirc;me Lef&egrave;vre", "M. Jérôme Lefèvre"),
        ("07&nbsp;81&nbsp;23&#160;45\u00a067", "07 81 23 45 67"),
        ("M.&nbsp;<span>Karim</span><br>Haddad", "M. Karim Haddad"),
        ("3008 S&amp;S &lt;b&gt;", "3008 S&S <b>"),
    ],
)
def test_html_fragment_text_decodes_entities(fragment: str, text: str) -> None:
    assert html_fragment_text(fragment) == text


SHOWCASE = """<p><strong>PEUGEOT - 3008 1.5 BlueHDi 130 S&amp;S EAT8</strong> E109876543</p>
<p><strong>{name}</strong></p><p><strong>{phone}</strong></p>
<p><a href="mailto:{email}">Lui &eacute;crire</a></p><p>&gt; Message : Bonjour</p>"""


@pytest.mark.parametrize(
    ("name", "full_name", "civility"),
    [
        ("M. J&eacute;r&ocirc;me Lef&egrave;vre", "Jérôme Lefèvre", "M."),
        ("M.&nbsp;Karim Haddad", "Karim Haddad", "M."),
        ("Mme&#160;Chantal&nbsp;Payet", "Chantal Payet", "Mme"),
    ],
)
def test_showcase_name_with_entities(name: str, full_name: str, civility: str) -> None:
    html = SHOWCASE.format(name=name, phone="06 12 34 56 78", email="a@orange.fr")
    draft = lead(layouts.lacentrale_vitrine(html_mail(html), "sha256:x"))
    assert draft.contact.full_name == full_name
    assert draft.extra["civility"] == civility


def test_showcase_phone_email_and_title_with_entities() -> None:
    html = SHOWCASE.format(
        name="Mme Sandrine Morel",
        phone="07&nbsp;81&nbsp;23&nbsp;45&nbsp;67",
        email="sandrine.morel&#64;orange.fr",
    )
    draft = lead(layouts.lacentrale_vitrine(html_mail(html), "sha256:x"))
    assert draft.contact.phone == "+33781234567"
    assert draft.contact.email == "sandrine.morel@orange.fr"
    assert draft.extra["ad_title"] == "PEUGEOT 3008 1.5 BlueHDi 130 S&S EAT8"
    assert draft.vehicle.ad_ref == "E109876543"


def test_showcase_mailto_percent_escaped_and_with_query() -> None:
    html = SHOWCASE.format(name="M. Paul Roy", phone="", email="paul.roy%40free.fr?subject=VO")
    draft = lead(layouts.lacentrale_vitrine(html_mail(html), "sha256:x"))
    assert draft.contact.email == "paul.roy@free.fr"


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("Mon numéro : 0692 45 67 89", ["+262692456789"]),  # La Réunion
        ("au 0690 41 27 83 après 17 h", ["+590690412783"]),  # Guadeloupe
        ("0696-12-34-56 ou 06 94 12 34 56", ["+596696123456", "+594694123456"]),
        ("0639.40.12.34", ["+262639401234"]),  # Mayotte
        ("fixe 0262 12 34 56, portable 06 12 34 56 78", ["+262262123456", "+33612345678"]),
        ("+262 692 45 67 89 ou 0692 45 67 89", ["+262692456789"]),
        ("06 85 71 07 46", ["+33685710746"]),
        ("ref E0692456789, 15 490 €, 98 000 km, le 7/02/2026", []),
    ],
)
def test_phones_in_text_tries_the_overseas_regions(text: str, numbers: list[str]) -> None:
    assert phones_in_text(text) == numbers


PHONE_TEXT = st.text(alphabet=st.sampled_from(list("0123456789 .-+/()aé:\n")), max_size=80)


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(PHONE_TEXT)
def test_phones_in_text_keeps_the_french_numbers_and_finds_only_valid_ones(text: str) -> None:
    found = phones_in_text(text)
    french = {
        phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        for match in phonenumbers.PhoneNumberMatcher(text, "FR")
    }
    assert french <= set(found)
    assert len(found) == len(set(found))
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(number)) for number in found)


def xml_mail(xml: str) -> InboundEmail:
    return InboundEmail(
        message_id="m-2@lacentrale.fr",
        from_addr="no_reply@lacentrale.fr",
        subject="Nouveau message pour votre annonce E107788990 - SKODA OCTAVIA",
        text="Les coordonnées de l'acheteur figurent dans le fichier joint.",
        xml_parts=[xml],
    )


LOOSE_XML = (
    '<lead><groupId>E107788990</groupId><customer><name part="full">Nicolas Fabre</name>'
    "<email>{email}</email><phone>{phone}</phone></customer><content>{content}</content></lead>"
)


def test_xml_phone_only_in_the_message_makes_a_lead() -> None:
    xml = LOOSE_XML.format(email="", phone="", content="Rappelez-moi au 06 11 22 33 44 svp")
    draft = lead(layouts.lacentrale_xml(xml_mail(xml), "sha256:x"))
    assert draft.contact.phone == "+33611223344"
    assert draft.contact.full_name == "Nicolas Fabre"
    assert draft.vehicle.ad_ref == "E107788990"
    assert draft.layout == "lacentrale_xml"


def test_xml_without_any_phone_stays_quarantined() -> None:
    xml = LOOSE_XML.format(email="", phone="", content="Quel est le prix ?")
    outcome = layouts.lacentrale_xml(xml_mail(xml), "sha256:x")
    assert outcome == Quarantine("xml_without_contact", "email/phone missing or invalid")


def test_xml_phone_written_in_the_xml_wins_over_the_message() -> None:
    xml = LOOSE_XML.format(email="", phone="0612", content="ou au 06 11 22 33 44")
    draft = lead(layouts.lacentrale_xml(xml_mail(xml), "sha256:x"))
    assert (draft.contact.phone, draft.contact.phone_raw) == (None, "0612")


def test_xml_namespaced_and_without_phone_element() -> None:
    xml = (
        '<lc:lead xmlns:lc="urn:lacentrale:lead"><lc:name part="full">Paul Roy</lc:name>'
        "<lc:content>Mon numéro : 0692 45 67 89, reprise possible ?</lc:content></lc:lead>"
    )
    draft = lead(layouts.lacentrale_xml(xml_mail(xml), "sha256:x"))
    assert draft.contact.phone == "+262692456789"
    assert draft.extra["trade_in_mentioned"] is True


def test_adf_prospect_without_contact_takes_the_phone_of_its_comments() -> None:
    xml = (
        "<adf><prospect><vehicle><stock>E107788990</stock></vehicle><customer>"
        '<contact><name part="full">Léa Moreau</name></contact>'
        "<comments>Un échange est-il possible ? 07 58 12 34 90</comments>"
        "</customer></prospect></adf>"
    )
    draft = lead(layouts.lacentrale_xml(xml_mail(xml), "sha256:x"))
    assert draft.contact.phone == "+33758123490"
    assert draft.contact.full_name == "Léa Moreau"
    assert draft.extra["trade_in_mentioned"] is True


def test_xml_trade_in_mentioned_in_content() -> None:
    xml = LOOSE_XML.format(
        email="n.fabre@exemple.fr", phone="0611223344", content="Je propose ma Clio en reprise."
    )
    draft = lead(layouts.lacentrale_xml(xml_mail(xml), "sha256:x"))
    assert draft.extra["trade_in_mentioned"] is True
    no_trade_in = LOOSE_XML.format(email="n.fabre@exemple.fr", phone="", content="Dispo ?")
    assert (
        "trade_in_mentioned" not in lead(layouts.lacentrale_xml(xml_mail(no_trade_in), "x")).extra
    )


def text_mail(text: str) -> InboundEmail:
    return InboundEmail(
        message_id="m-3@lacentrale.fr",
        from_addr="no_reply@lacentrale.fr",
        subject="Nouveau message pour votre annonce E102233445 - FORD KUGA",
        text=text,
    )


LABELS = "Contact : Madame Émilie Vasseur\nEmail : e.vasseur@exemple.fr\nTél :\n{tail}"


@pytest.mark.parametrize(
    "footer",
    [
        "L\u2019équipe La Centrale\nService client pro : 01 76 54 32 10",  # typographic apostrophe
        "L'équipe La Centrale\nService client pro : 01 76 54 32 10",
        "Service client pro : 01 76 54 32 10",
        "Pour répondre à cet acheteur, répondez à cet e-mail.\nAide : 01 76 54 32 10",
        "Vous recevez cet e-mail car vous êtes client Pro. Aide : 01 76 54 32 10",
        "Merci de ne pas répondre à ce message. Aide : 01 76 54 32 10",
        "© La Centrale 2026 - 01 76 54 32 10",
        "Service client\nTéléphone : 01 76 54 32 10",
    ],
)
def test_footer_ends_the_message_and_gives_no_phone(footer: str) -> None:
    text = LABELS.format(tail=f"Message : Le Kuga est-il dispo ?\n\n{footer}\n")
    draft = lead(layouts.lacentrale_labels(text_mail(text), "sha256:x"))
    assert draft.message == "Le Kuga est-il dispo ?"
    assert (draft.contact.phone, draft.contact.phone_raw) == (None, None)


def test_message_phone_before_the_footer_is_kept() -> None:
    text = LABELS.format(
        tail="Message : Rappelez-moi au 06 45 67 89 01.\nL\u2019équipe La Centrale\n"
        "Service client pro : 01 76 54 32 10\n"
    )
    draft = lead(layouts.lacentrale_labels(text_mail(text), "sha256:x"))
    assert draft.contact.phone == "+33645678901"
    assert draft.message == "Rappelez-moi au 06 45 67 89 01."


def test_html_message_ends_with_its_table() -> None:
    html = (
        "<table><tr><td>Nom : Camille Perrin</td></tr><tr><td>Email : c.perrin@exemple.fr</td>"
        "</tr><tr><td>T&eacute;l : </td></tr></table><table><tr><td>Message</td><td>Bonjour,"
        "<br>la 208 est-elle disponible&nbsp;?</td></tr></table><table><tr><td>Une question"
        "&nbsp;? Appelez le 01&nbsp;76&nbsp;54&nbsp;32&nbsp;10</td></tr></table>"
    )
    draft = lead(layouts.lacentrale_labels(html_mail(html, subject="Nouveau message"), "x"))
    assert draft.message == "Bonjour, la 208 est-elle disponible ?"
    assert draft.contact.phone is None


def test_labels_are_not_read_in_the_footer_unless_there_is_no_message() -> None:
    assert layouts.before_footer("Nom : A\nMessage : B\nL\u2019équipe\nTél : 1") == (
        "Nom : A\nMessage : B\n"
    )
    no_message = "L'équipe La Centrale vous transmet ce contact.\nTél : 06 45 67 89 01"
    assert layouts.before_footer(no_message) == no_message


def test_showcase_phone_never_taken_from_the_footer() -> None:
    html = (
        "<p><strong>FORD - Kuga III</strong> E102233445</p><p><strong>Mme Emilie Vasseur"
        '</strong></p><p><a href="mailto:e.vasseur@exemple.fr">Lui écrire</a></p>'
        "<p>&gt; Message : Dispo ?</p><p>L&rsquo;&eacute;quipe La Centrale</p>"
        "<p>Service client pro : <strong>01 76 54 32 10</strong></p>"
    )
    draft = lead(layouts.lacentrale_vitrine(html_mail(html), "sha256:x"))
    assert draft.contact.phone is None
    assert draft.message == "Dispo ?"
    repeated = html.replace(
        "</strong></p><p><a", "</strong></p><p><strong>01 76 54 32 10</strong></p><p><a"
    )
    assert lead(layouts.lacentrale_vitrine(html_mail(repeated), "x")).contact.phone == (
        "+33176543210"
    )


def test_showcase_email_never_taken_from_the_footer() -> None:
    html = (
        "<p><strong>FORD - Kuga III</strong> E102233445</p><p><strong>Mme Emilie Vasseur"
        '</strong></p><p><a href="mailto:">Lui écrire</a></p><p>&gt; Message : Dispo ?</p>'
        "<p>Cordialement,<br>L&rsquo;&eacute;quipe La Centrale</p>"
        '<p><a href="mailto:service.pro&#64;lacentrale.fr">Nous écrire</a></p>'
    )
    assert layouts.html_footer_start(html) == html.index("L&rsquo;")
    assert layouts.lacentrale_vitrine(html_mail(html), "sha256:x") == Quarantine(
        "no_contact_details", "lacentrale_vitrine: email/phone invalid"
    )


# --- Robustness: each parser returns an outcome (or None: "not my layout"), never raises ----

_TOKENS = [
    "<strong>", "</strong>", "<table>", "</table>", "<tr><td>", "</td>", "<p>", "<br>", "<b>",
    '<a href="mailto:', '">', "mailto:", "Message :", "Message", "> Message : ", "Tél :",
    "Téléphone : ", "Email : ", "Contact : ", "Nom : ", "Prénom : ", "E-mail : ", "Référence :",
    "M. ", "Mme ", "M.&nbsp;", "Monsieur ", "J&eacute;r&ocirc;me", "&#64;", "&nbsp;", "&amp;",
    "&#xD800;", "&#1114112;", "&", "a@b.fr", "x&#64;orange.fr", "06 12 34 56 78",
    "07&nbsp;81&nbsp;23&nbsp;45&nbsp;67", "0692 45 67 89", "+262 692", "E123456789",
    "PEUGEOT - 3008 S&amp;S", "L\u2019équipe", "L'équipe", "Service client : 01 76 54 32 10",
    "ref: E1", "Cordialement", "--", "«", "»", "nouveau message", "12 990 €", "reprise",
    "https://www.leboncoin.fr/voitures/1234567.htm", "padding-left: 24px", "\n", " ", "<", ">",
    "\u00a0", "\x00", "\udcff", "é", "0",
]  # fmt: skip
_XML_TOKENS = [
    "<lead>", "</lead>", "<adf>", "</adf>", "<prospect>", "</prospect>", "<customer>",
    "</customer>", "<contact>", "</contact>", "<phone>", "</phone>", "<phone/>", "<email>",
    "</email>", '<name part="full">', "</name>", "<content>", "</content>", "<comments>",
    "</comments>", "<groupId>", "</groupId>", "<vehicle>", "</vehicle>", "<x:phone xmlns:x='u'>",
    "</x:phone>", "06 11 22 33 44", "0692 45 67 89", "reprise", "a@b.fr", "&amp;", "<!DOCTYPE a>",
    "<?xml version='1.0'?>", "é", " ", "<", "&",
]  # fmt: skip
_LAYOUTS = (
    layouts.lacentrale_xml,
    layouts.lacentrale_labels,
    layouts.lacentrale_vitrine,
    layouts.leboncoin_form,
    layouts.leboncoin_message,
    layouts.generic,
)
_ROBUST = settings(
    max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def _joined(tokens: list[str]) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(tokens) | st.text(max_size=8), max_size=40).map("".join)


@_ROBUST
@given(
    subject=_joined(_TOKENS),
    text=_joined(_TOKENS),
    html=_joined(_TOKENS),
    xml=st.lists(_joined(_XML_TOKENS), max_size=1),
)
def test_layouts_never_raise(subject: str, text: str, html: str, xml: list[str]) -> None:
    html_text = html_to_text(html)
    mail = InboundEmail(
        message_id="m@x", from_addr="no_reply@lacentrale.fr", subject=subject, text=text,
        html=html, html_text=html_text, xml_parts=xml,
    )  # fmt: skip
    for parse in _LAYOUTS:
        outcome = parse(mail, "sha256:x")
        assert outcome is None or isinstance(outcome, LeadDraft | Quarantine | Ignore)


@_ROBUST
@given(_joined(_TOKENS))
def test_text_helpers_never_raise(text: str) -> None:
    assert isinstance(decode_header(text), str)
    assert isinstance(html_fragment_text(text), str)
    assert all(isinstance(item, str) for item in layouts.strong_texts(text))
    assert all(number.startswith("+") for number in phones_in_text(text))
    assert isinstance(layouts.before_footer(text), str)
    assert 0 <= layouts.html_footer_start(text) <= len(text)


def test_eight_bit_bytes_in_a_part_header_do_not_fail_the_parse() -> None:
    raw = (
        b'From: Paul Roy <paul.roy@free.fr>\r\nContent-Type: multipart/mixed; boundary="B"\r\n'
        b"\r\n--B\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b'Content-Disposition: inline; filename="r\xc3\xa9ponse.txt"\r\n\r\n'
        b"Bonjour, la Clio est-elle dispo ? Tel : 06 12 34 56 78\r\n--B--\r\n"
    )
    draft = lead(parse_email(raw)[0])
    assert draft.contact.phone == "+33612345678"
    assert draft.contact.email == "paul.roy@free.fr"
