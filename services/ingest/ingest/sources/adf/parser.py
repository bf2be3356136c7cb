"""ADF 1.0 XML to lead drafts: one per ``<prospect>``. Parsed with defusedxml (no DTD, no
entities), tag names matched case-insensitively, unknown values kept in ``extra``.

``parse_adf`` raises ``AdfSyntaxError`` on XML that is not well-formed (the HTTP route answers
422); everything else becomes a draft or a quarantine reason.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import datetime
from typing import Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from ingest.canonical import Contact, LeadDraft, Outcome, Quarantine, Vehicle
from ingest.canonical.contacts import clean, int_in, phones_in_text, price_eur
from ingest.canonical.drafts import Source
from ingest.canonical.instants import utc_instant


class AdfSyntaxError(ValueError):
    """Not well-formed XML, or a forbidden construct (DTD, entities)."""


def _local(tag: object) -> str:
    name = tag if isinstance(tag, str) else ""
    return name.rsplit("}", 1)[-1].lower()


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _first(element: ET.Element | None, name: str) -> ET.Element | None:
    if element is None:
        return None
    found = _children(element, name)
    return found[0] if found else None


def _text(element: ET.Element | None) -> str | None:
    if element is None:
        return None
    return clean("".join(element.itertext()))


def _find_any(element: ET.Element, name: str) -> ET.Element | None:
    for node in element.iter():
        if _local(node.tag) == name:
            return node
    return None


def load(xml: str | bytes) -> ET.Element:
    if isinstance(xml, bytes):
        xml = xml.decode("utf-8", errors="replace")
    xml = xml.lstrip("\ufeff \r\n\t")
    try:
        root: ET.Element = SafeET.fromstring(xml, forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise AdfSyntaxError(type(exc).__name__) from None
    return root


def _date(text: str | None) -> datetime | None:
    if not text:
        return None
    candidate = text.strip().replace("Z", "+00:00")
    for value in (candidate, candidate[:19]):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            continue
        return utc_instant(parsed)
    return None


def _vehicle(prospect: ET.Element) -> tuple[Vehicle, dict[str, Any]]:
    vehicles = _children(prospect, "vehicle")
    wanted = next(
        (v for v in vehicles if (v.get("interest") or "buy").lower() not in ("trade-in", "sell")),
        vehicles[0] if vehicles else None,
    )
    extra: dict[str, Any] = {}
    trade_ins = [v for v in vehicles if (v.get("interest") or "").lower() in ("trade-in", "sell")]
    if trade_ins:
        extra["trade_in"] = {
            key: _text(_first(trade_ins[0], key))
            for key in ("year", "make", "model", "odometer")
            if _text(_first(trade_ins[0], key))
        }
    if wanted is None:
        return Vehicle(), extra
    odometer = _first(wanted, "odometer")
    mileage = int_in(_text(odometer), 5_000_000)
    if mileage is not None and odometer is not None and odometer.get("units", "").lower() == "mi":
        mileage = round(mileage * 1.609344)
    price_node = _first(wanted, "price")
    price_text = _text(price_node)
    price = int_in(price_text, 10_000_000) if price_text else None
    if price_text and price is None:
        price = price_eur(price_text)
    year = int_in(_text(_first(wanted, "year")), 2100)
    for key in ("trim", "vin"):
        value = _text(_first(wanted, key))
        if value:
            extra[key] = value
    stock = _text(_first(wanted, "stock")) or _text(_first(wanted, "groupid"))
    return (
        Vehicle(
            ad_ref=stock,
            url=_text(_first(wanted, "url")),
            make=_text(_first(wanted, "make")),
            model=_text(_first(wanted, "model")),
            year=year if year and year >= 1900 else None,
            price_eur=price,
            mileage_km=mileage,
        ),
        extra,
    )


def _contact(container: ET.Element | None) -> Contact:
    if container is None:
        return Contact()
    names = {
        (node.get("part") or "full").lower(): _text(node) for node in _children(container, "name")
    }
    phones = [_text(node) for node in _children(container, "phone")]
    emails = [_text(node) for node in _children(container, "email")]
    contact = Contact.from_raw(
        first_name=names.get("first"),
        last_name=names.get("last"),
        full_name=names.get("full"),
        email=next((e for e in emails if e), None),
        phone=next((p for p in phones if p), None),
    )
    return contact


def _with_message_phone(contact: Contact, message: str | None) -> Contact:
    """La Centrale's rule: with no phone of its own, the contact's phone is the first one
    written in the message."""
    if contact.phone or contact.phone_raw:
        return contact
    found = phones_in_text(message or "")
    return replace(contact, phone=found[0]) if found else contact


def _prospect(
    prospect: ET.Element,
    *,
    source: Source,
    fallback_ref: str,
    fallback_date: datetime | None,
    phone_from_message: bool,
) -> Outcome:
    customer = _first(prospect, "customer")
    contact_node = _first(customer, "contact") if customer is not None else None
    contact = _contact(contact_node if contact_node is not None else customer)
    vehicle, extra = _vehicle(prospect)
    id_node = _first(prospect, "id")
    ref = _text(id_node)
    if ref and id_node is not None and id_node.get("source"):
        ref = f"{clean(id_node.get('source'), 80)}:{ref}"
    comments = _text(_first(customer, "comments")) if customer is not None else None
    if phone_from_message:
        contact = _with_message_phone(contact, comments)
    address = _first(contact_node, "address") if contact_node is not None else None
    if address is not None:
        for key in ("postalcode", "city", "country"):
            value = _text(_first(address, key))
            if value:
                extra[key] = value
    provider = _first(prospect, "provider")
    if provider is not None:
        name = _text(_first(provider, "name")) or _text(_first(provider, "service"))
        if name:
            extra["provider"] = name
    if not contact.reachable:
        return Quarantine("no_contact_details", "customer.contact.email/phone missing or invalid")
    return LeadDraft(
        source=source,
        source_ref=(ref or fallback_ref)[:200],
        received_at=_date(_text(_first(prospect, "requestdate"))) or fallback_date,
        contact=contact,
        vehicle=vehicle,
        message=comments,
        extra=extra,
        layout="adf",
    )


def parse_adf(
    xml: str | bytes,
    *,
    source: Source = "adf",
    fallback_ref: str | None = None,
    fallback_date: datetime | None = None,
    phone_from_message: bool = False,
) -> list[Outcome]:
    """One outcome per prospect. ``phone_from_message``: a contact without a phone takes the
    first phone written in its message (La Centrale's rule)."""
    root = load(xml)
    base_ref = (
        fallback_ref
        or "sha256:"
        + hashlib.sha256(
            xml if isinstance(xml, bytes) else xml.encode("utf-8", errors="replace")
        ).hexdigest()
    )
    if _local(root.tag) == "adf":
        prospects = _children(root, "prospect")
        if not prospects:
            return [Quarantine("adf_without_prospect")]
        return [
            _prospect(
                prospect,
                source=source,
                fallback_ref=base_ref if index == 0 else f"{base_ref}#{index + 1}",
                fallback_date=fallback_date,
                phone_from_message=phone_from_message,
            )
            for index, prospect in enumerate(prospects)
        ]
    return [
        _loose(
            root,
            source=source,
            fallback_ref=base_ref,
            fallback_date=fallback_date,
            phone_from_message=phone_from_message,
        )
    ]


def _loose(
    root: ET.Element,
    *,
    source: Source,
    fallback_ref: str,
    fallback_date: datetime | None,
    phone_from_message: bool,
) -> Outcome:
    """La Centrale's ADF-like XML: ``email``, ``phone``, ``name part="full"``, ``groupId``,
    ``make``, ``model``, ``content``/``comments`` anywhere in the tree."""
    names = {
        (node.get("part") or "full").lower(): _text(node)
        for node in root.iter()
        if _local(node.tag) == "name"
    }
    contact = Contact.from_raw(
        first_name=names.get("first"),
        last_name=names.get("last"),
        full_name=names.get("full"),
        email=_text(_find_any(root, "email")),
        phone=_text(_find_any(root, "phone")),
    )
    message = _text(_find_any(root, "content")) or _text(_find_any(root, "comments"))
    if phone_from_message:
        contact = _with_message_phone(contact, message)
    if not contact.reachable:
        return Quarantine("xml_without_contact", "email/phone missing or invalid")
    ad_ref = _text(_find_any(root, "groupid")) or _text(_find_any(root, "stock"))
    return LeadDraft(
        source=source,
        source_ref=fallback_ref[:200],
        received_at=fallback_date,
        contact=contact,
        vehicle=Vehicle(
            ad_ref=ad_ref,
            make=_text(_find_any(root, "make")),
            model=_text(_find_any(root, "model")),
        ),
        message=message,
        layout="xml",
    )
