"""One parser per known e-mail layout. Each returns ``None`` when the layout does not match
(the classifier then tries the next one), or an outcome when it does."""

from __future__ import annotations

import re
from dataclasses import replace
from html import unescape as html_unescape
from typing import Any
from urllib.parse import unquote

from ingest.canonical import Contact, LeadDraft, Outcome, Quarantine, Vehicle
from ingest.canonical.contacts import clean, emails_in_text, phones_in_text, price_eur
from ingest.canonical.drafts import Source
from ingest.sources.adf.parser import AdfSyntaxError, parse_adf
from ingest.sources.email.mime import InboundEmail, html_fragment_text, html_to_text

LEBONCOIN_MIN_FIELDS = 4
LACENTRALE_MIN_FIELDS = 3
_CIVILITY = re.compile(r"^(Monsieur|Madame|Mademoiselle|M\.? ou Mme|Mme|Mlle|Mr\.?|M\.)\s+", re.I)
_GUILLEMETS = re.compile(r"«\s*(.+?)\s*»", re.S)
_LACENTRALE_SUBJECT = re.compile(
    r"Nouveau message pour votre annonce\s+([A-Z]\d{7,10})\s*-\s*(.+)", re.I
)
_LACENTRALE_REF = re.compile(r"\b([A-Z]\d{7,10})\b")
_LEBONCOIN_AD = re.compile(r"https?://(?:www\.)?leboncoin\.fr/[^\s\"'<>]*?(\d{6,})(?:\.htm)?")
_MAILTO = re.compile(r"mailto:([^\"'?>\s]+)", re.I)
_STRONG = re.compile(r"<strong\b[^<>]{0,500}>(.{0,2000}?)</strong\s*>", re.I | re.S)
_SHOWCASE_TITLE = re.compile(r"([A-ZÀ-ÖØ-Þ][A-ZÀ-ÖØ-Þ0-9 -]*?)\s+-\s+(.+)")


def label(text: str, *names: str) -> str | None:
    """The value after ``Name :`` on the same line (first match of any of ``names``)."""
    for name in names:
        match = re.search(rf"^[ \t]*{name}[ \t]*:[ \t]*(.+)$", text, re.M | re.I)
        if match:
            value = clean(match.group(1), 500)
            if value:
                return value
    return None


def block_after(text: str, name: str, stops: tuple[str, ...] = ()) -> str | None:
    """A multi-line value after ``Name :`` (or ``Name`` alone at a line start) up to a stop."""
    match = re.search(rf"^[ \t>]*{name}\b[ \t]*:?[ \t]*(.*)", text, re.M | re.I | re.S)
    if not match:
        return None
    value = match.group(1)
    for stop in stops:
        found = re.search(stop, value, re.M | re.I)
        if found:
            value = value[: found.start()]
    return clean(value)


def split_civility(name: str | None) -> tuple[str | None, str | None]:
    if not name:
        return None, None
    match = _CIVILITY.match(name)
    if not match:
        return None, name
    return match.group(1), clean(name[match.end() :], 200)


def _title_parts(title: str | None) -> tuple[str | None, str | None]:
    if not title:
        return None, None
    words = title.split()
    make = words[0].title() if words else None
    model = None
    if len(words) > 1:
        model = words[1] if any(ch.isdigit() for ch in words[1]) else words[1].title()
    return make, model


def _count(*values: object) -> int:
    return sum(1 for value in values if value)


def _ref(mail: InboundEmail, fallback: str) -> str:
    return mail.message_id or fallback


# --- Leboncoin ------------------------------------------------------------------------------


def leboncoin_form(mail: InboundEmail, fallback_ref: str) -> Outcome | None:
    """The pro contact-form e-mail: ``Nom :``, ``Prénom :``, ``E-mail :``, ``Téléphone :``."""
    text = mail.best_text
    email = label(text, "E-?mail", "Email")
    phone = label(text, "T[ée]l[ée]phone", "T[ée]l")
    if email is None and phone is None:
        return None
    last = label(text, "Nom")
    first = label(text, "Pr[ée]nom")
    message_match = _GUILLEMETS.search(text)
    message = clean(message_match.group(1)) if message_match else None
    url_match = _LEBONCOIN_AD.search(mail.html or text)
    url = url_match.group(0) if url_match else None
    title = None
    bold = re.search(r"padding-left:\s*24px[^>]*>\s*<b>(.*?)</b>", mail.html, re.S | re.I)
    if bold:
        title = clean(html_to_text(bold.group(1)), 200)
    price = price_eur(text)
    stock_ref = label(text, "R[ée]f[ée]rence")
    fields = _count(email, phone, last, first, message, url, price, stock_ref)
    if fields < LEBONCOIN_MIN_FIELDS:
        return Quarantine("leboncoin_form_incomplete", f"{fields} fields found")
    contact = Contact.from_raw(first_name=first, last_name=last, email=email, phone=phone)
    if not contact.reachable:
        return Quarantine("no_contact_details", "E-mail/Téléphone invalid")
    make, model = _title_parts(title)
    extra: dict[str, Any] = {}
    if title:
        extra["ad_title"] = title
    if url_match:
        extra["leboncoin_ad_id"] = url_match.group(1)
    return LeadDraft(
        source="leboncoin",
        source_ref=_ref(mail, fallback_ref),
        received_at=mail.date,
        contact=contact,
        vehicle=Vehicle(ad_ref=stock_ref, url=url, make=make, model=model, price_eur=price),
        message=message,
        extra=extra,
        layout="leboncoin_form",
    )


def leboncoin_message(mail: InboundEmail, fallback_ref: str) -> Outcome | None:
    """The messaging notification: ad title, price, pseudonym, the message between « »."""
    text = mail.best_text
    if not re.search(r"nouveau message", f"{mail.subject}\n{text}", re.I):
        return None
    message_match = _GUILLEMETS.search(text)
    if message_match is None:
        return Quarantine("leboncoin_message_without_text")
    message = clean(message_match.group(1))
    phones = phones_in_text(message or "")
    emails = emails_in_text(message or "")
    url_match = _LEBONCOIN_AD.search(mail.html or text)
    before = text[: message_match.start()]
    lines = [line.strip() for line in before.split("\n") if line.strip()]
    pseudonym = None
    title = None
    for index, line in enumerate(lines):
        if re.search(r"nouveau message", line, re.I):
            rest = lines[index + 1 :]
            if rest:
                title = clean(rest[0], 200)
            if len(rest) > 1:
                candidates = [item for item in rest[1:] if not re.search(r"\d\s?€", item)]
                pseudonym = clean(candidates[-1], 100) if candidates else None
            break
    extra: dict[str, Any] = {}
    if pseudonym:
        extra["pseudonym"] = pseudonym
    if title:
        extra["ad_title"] = title
    if url_match:
        extra["leboncoin_ad_id"] = url_match.group(1)
    make, model = _title_parts(title)
    return LeadDraft(
        source="leboncoin",
        source_ref=_ref(mail, fallback_ref),
        kind="message",
        received_at=mail.date,
        contact=Contact.from_raw(
            phone=phones[0] if phones else None, email=emails[0] if emails else None
        ),
        vehicle=Vehicle(
            url=url_match.group(0) if url_match else None,
            make=make,
            model=model,
            price_eur=price_eur(before),
        ),
        message=message,
        extra=extra,
        layout="leboncoin_message",
    )


# --- La Centrale ----------------------------------------------------------------------------


def lacentrale_url(ref: str | None) -> str | None:
    if not ref:
        return None
    return f"https://www.lacentrale.fr/auto-occasion-annonce-{ord(ref[0])}{ref[1:]}.html"


def _strongs(html: str) -> list[tuple[int, str]]:
    """(offset in the HTML, text) of each non-empty ``<strong>``, entities decoded (the showcase
    layout's values are only found in the raw HTML, so they are decoded here)."""
    found = (
        (match.start(), html_fragment_text(match.group(1))) for match in _STRONG.finditer(html)
    )
    return [(offset, text) for offset, text in found if text]


def strong_texts(html: str) -> list[str]:
    """The text of each non-empty ``<strong>`` of an HTML body, in order, entities decoded."""
    return [text for _, text in _strongs(html)]


def _showcase_title(strongs: list[str]) -> str | None:
    """``<strong>MAKE - Model version</strong>`` → ``MAKE Model version``."""
    for text in strongs:
        match = _SHOWCASE_TITLE.fullmatch(text)
        if match:
            return clean(f"{match.group(1)} {match.group(2)}", 200)
    return None


def _mailto(html: str, end: int) -> str | None:
    """The first non-empty ``mailto:`` address before ``end`` (entities, %-escapes decoded)."""
    for match in _MAILTO.finditer(html, 0, end):
        address = unquote(html_unescape(match.group(1))).split("?")[0].strip()
        if address:
            return address
    return None


def _lacentrale_vehicle(mail: InboundEmail) -> tuple[Vehicle, dict[str, Any]]:
    subject = _LACENTRALE_SUBJECT.search(mail.subject)
    ref = subject.group(1).upper() if subject else None
    title = clean(subject.group(2), 200) if subject else None
    if ref is None:
        found = _LACENTRALE_REF.search(mail.best_text)
        ref = found.group(1) if found else None
    if title is None and mail.html:  # the showcase layout: <strong>MAKE - Model version</strong>
        title = _showcase_title(strong_texts(mail.html))
    make, model = _title_parts(title)
    extra: dict[str, Any] = {"ad_title": title} if title else {}
    return Vehicle(ad_ref=ref, url=lacentrale_url(ref), make=make, model=model), extra


# The portal's footer starts at one of these lines (after the message): nothing in it is the
# buyer's (La Centrale prints its own service numbers there).
_APOSTROPHE = "['\u2019\u02bc]"  # straight, typographic (U+2019), modifier letter (U+02BC)
_FOOTER_LINES = (
    rf"L{_APOSTROPHE}\s?[ée]quipe\b",
    r"Service\s+clients?\b",
    rf"Pour\s+(?:lui\s+r[ée]pondre|r[ée]pondre\s+(?:à|a)\s+(?:cet|ce|l{_APOSTROPHE}))",
    r"Merci\s+de\s+ne\s+pas\s+r[ée]pondre",
    r"Ne\s+r[ée]pondez\s+pas",
    r"Si\s+vous\s+ne\s+souhaitez\s+plus\b",
    r"Vous\s+recevez\s+(?:cet|ce)\s+(?:e-?mail|message|courriel)",
    r"Mentions\s+l[ée]gales\b",
    r"©",
)
_FOOTER = re.compile(rf"^[ \t>]*(?:{'|'.join(_FOOTER_LINES)})", re.M | re.I)
_MESSAGE_STOPS = (r"^\s*ref\s*:", r"^\s*Cordialement", r"^\s*--", _FOOTER.pattern)
_MESSAGE_LABEL = re.compile(r"^[ \t>]*Message\b", re.M | re.I)
_TABLE_END = re.compile(r"</table\s*>", re.I)
_TEXT_NODE = re.compile(r">([^<>]*[^<>\s][^<>]*)")
_DIGITS = re.compile(r"(?:\d\D{0,3}){6}")  # a phone number has more than 6 digits


def before_footer(text: str) -> str:
    """The text up to the portal's footer: its first footer line after the ``Message`` label
    (the whole text when there is no message label, so nothing is cut by mistake)."""
    message = _MESSAGE_LABEL.search(text)
    footer = _FOOTER.search(text, message.end()) if message else None
    return text[: footer.start()] if footer else text


def html_footer_start(html: str) -> int:
    """Where the portal's footer starts in raw HTML: the first text node that begins with a
    footer line after the node holding the ``Message`` label (the end when there is none)."""
    after_message = False
    for match in _TEXT_NODE.finditer(html):
        text = html_fragment_text(match.group(1))
        if after_message and _FOOTER.match(text):
            return match.start(1)
        after_message = after_message or _MESSAGE_LABEL.match(text) is not None
    return len(html)


def lacentrale_message(mail: InboundEmail, text: str) -> str | None:
    """The ``Message`` block up to a stop line (``ref:``, signature, footer) and, in an HTML
    body, up to the end of the table that holds it (the footer comes in the next one)."""
    sections = _TABLE_END.split(mail.html) if mail.html_text else []
    if len(sections) > 1:  # without a table, the HTML's text is ``text`` already
        for section in sections:
            if "message" not in section.lower():
                continue
            section_text = html_to_text(section)
            if _MESSAGE_LABEL.search(section_text):
                message = block_after(section_text, "Message", _MESSAGE_STOPS)
                if message:
                    return message
                break  # the label's table ends before the message: read the whole text
    return block_after(text, "Message", _MESSAGE_STOPS)


def _lacentrale_draft(
    mail: InboundEmail,
    fallback_ref: str,
    *,
    layout: str,
    name: str | None,
    email: str | None,
    phone: str | None,
    message: str | None,
) -> Outcome:
    vehicle, extra = _lacentrale_vehicle(mail)
    civility, full_name = split_civility(name)
    if civility:
        extra["civility"] = civility
    if phone is None and message:
        found = phones_in_text(message)
        phone = found[0] if found else None
    fields = _count(name, email, phone, message, vehicle.ad_ref)
    if fields < LACENTRALE_MIN_FIELDS:
        return Quarantine("lacentrale_incomplete", f"{layout}: {fields} fields found")
    contact = Contact.from_raw(full_name=full_name, email=email, phone=phone)
    if not contact.reachable:
        return Quarantine("no_contact_details", f"{layout}: email/phone invalid")
    if trade_in_mentioned(message):
        extra["trade_in_mentioned"] = True
    return LeadDraft(
        source="lacentrale",
        source_ref=_ref(mail, fallback_ref),
        received_at=mail.date,
        contact=contact,
        vehicle=vehicle,
        message=message,
        extra=extra,
        layout=layout,
    )


_TRADE_IN = re.compile(r"\b(reprise|échange|echange)\b", re.I)


def trade_in_mentioned(message: str | None) -> bool:
    return bool(message and _TRADE_IN.search(message))


def _parse_lacentrale_xml(xml: str, ref: str, mail: InboundEmail) -> Outcome:
    """``parse_adf`` on the XML part, with La Centrale's rule: a phone found only in the
    message (``content``/``comments``) is the contact's phone."""
    return parse_adf(
        xml, source="lacentrale", fallback_ref=ref, fallback_date=mail.date, phone_from_message=True
    )[0]


def lacentrale_xml(mail: InboundEmail, fallback_ref: str) -> Outcome | None:
    """The XML part (ADF or ADF-like); ad ref, title and ``trade_in_mentioned`` as for the
    other La Centrale layouts."""
    if not mail.xml_parts:
        return None
    try:
        outcome = _parse_lacentrale_xml(mail.xml_parts[0], _ref(mail, fallback_ref), mail)
    except AdfSyntaxError as exc:
        return Quarantine("xml_not_well_formed", str(exc))
    if isinstance(outcome, LeadDraft):
        vehicle, extra = _lacentrale_vehicle(mail)
        # A trade-in vehicle in the XML is as clear a mention as the words in the message.
        if trade_in_mentioned(outcome.message) or "trade_in" in outcome.extra:
            extra["trade_in_mentioned"] = True
        ad_ref = outcome.vehicle.ad_ref or vehicle.ad_ref
        outcome = replace(
            outcome,
            vehicle=replace(outcome.vehicle, ad_ref=ad_ref, url=lacentrale_url(ad_ref)),
            extra={**extra, **outcome.extra},
            layout="lacentrale_xml",
        )
    return outcome


def lacentrale_labels(mail: InboundEmail, fallback_ref: str) -> Outcome | None:
    """Text and "new format" HTML: ``Contact :``/``Nom :``, ``Email``/``Mail``, ``Tél``."""
    text = before_footer(mail.best_text)
    email = label(text, "E-?mail", "Mail")
    phone = label(text, "T[ée]l[ée]phone", "T[ée]l")
    name = label(text, "Contact", "Nom")
    if _count(email, phone, name) < 2:
        return None
    message = lacentrale_message(mail, text)
    return _lacentrale_draft(
        mail, fallback_ref, layout="lacentrale_labels", name=name, email=email, phone=phone,
        message=message,
    )  # fmt: skip


def lacentrale_vitrine(mail: InboundEmail, fallback_ref: str) -> Outcome | None:
    """The dealer showcase layout: ``mailto:`` link, civility + name and phone in ``<strong>``
    (entities decoded: ``M.&nbsp;J&eacute;r&ocirc;me``, ``07&nbsp;81…``, ``x&#64;orange.fr``)."""
    if not mail.html:
        return None
    footer = html_footer_start(mail.html)  # a mailto or <strong> there is not the buyer's
    mailto = _mailto(mail.html, footer)
    strongs = [
        strong
        for offset, strong in _strongs(mail.html)
        if offset < footer and not _FOOTER.match(strong)
    ]
    name = next((strong for strong in strongs if all(split_civility(strong))), None)
    if mailto is None and name is None:
        return None
    phone = next(
        (
            found[0]
            for strong in strongs
            if _DIGITS.search(strong) and (found := phones_in_text(strong))
        ),
        None,
    )
    message = lacentrale_message(mail, before_footer(mail.best_text))
    return _lacentrale_draft(
        mail,
        fallback_ref,
        layout="lacentrale_vitrine",
        name=clean(name, 200),
        email=mailto,
        phone=phone,
        message=message,
    )


# --- Anyone else ----------------------------------------------------------------------------


def generic(mail: InboundEmail, fallback_ref: str, *, source: Source = "email") -> Outcome:
    """A prospect's own e-mail, or a dealer-site form: labels first, then the sender."""
    text = mail.best_text
    email = label(text, "E-?mail", "Mail", "Courriel")
    phone = label(text, "T[ée]l[ée]phone", "T[ée]l", "Portable", "Mobile")
    last = label(text, "Nom")
    first = label(text, "Pr[ée]nom")
    message = block_after(text, "Message", ()) if (email or phone) else None
    if email is None:
        email = mail.reply_to or mail.from_addr
    if phone is None:
        found = phones_in_text(text[:20_000])
        phone = found[0] if found else None
    full_name = None if (first or last) else clean(mail.from_name, 200)
    contact = Contact.from_raw(first_name=first, last_name=last, full_name=full_name,
                               email=email, phone=phone)  # fmt: skip
    if not contact.reachable:
        return Quarantine("no_contact_details", "no sender address, e-mail or phone found")
    body = clean(message or text, 10_000)
    if mail.subject and not message:
        body = clean(f"{mail.subject}\n{text}", 10_000)
    return LeadDraft(
        source=source,
        source_ref=_ref(mail, fallback_ref),
        received_at=mail.date,
        contact=contact,
        message=body,
        extra={"subject": clean(mail.subject, 200)} if mail.subject else {},
        layout="generic",
    )
