"""The values of the template variables for one lead (or the preview's sample lead)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from qualify.messages.settings import MessagingSettings

_WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


@dataclass(frozen=True)
class LeadFacts:
    """What a template may say about a lead."""

    first_name: str | None
    full_name: str | None
    vehicle: dict[str, Any] | None
    ad_ref: str | None
    site: str | None
    due_at: datetime  # the first-contact deadline: "when the dealer will call"


SAMPLE_VEHICLE: dict[str, Any] = {"make": "Peugeot", "model": "208", "year": 2019}


def _hour(moment: datetime) -> str:
    return f"{moment.hour}h" if moment.minute == 0 else f"{moment.hour}h{moment.minute:02d}"


def call_time(due_at: datetime, now: datetime, zone: tzinfo) -> str:
    """When the dealer will call, in French, from the first-contact deadline: "aujourd'hui avant
    11h15", "demain avant 9h10", "lundi avant 9h10", "le 3 décembre avant 9h10"."""
    due, today = due_at.astimezone(zone), now.astimezone(zone)
    if due <= today:
        return "dès que possible"
    days = (due.date() - today.date()).days
    hour = _hour(due)
    if days == 0:
        return f"aujourd'hui avant {hour}"
    if days == 1:
        return f"demain avant {hour}"
    if days < 7:
        return f"{_WEEKDAYS[due.weekday()]} avant {hour}"
    return f"le {due.day} {_MONTHS[due.month - 1]} avant {hour}"


def vehicle_label(vehicle: dict[str, Any] | None, ad_ref: str | None) -> str:
    vehicle = vehicle or {}
    name = " ".join(str(vehicle[key]) for key in ("make", "model") if vehicle.get(key))
    if name and vehicle.get("year"):
        return f"{name} ({vehicle['year']})"
    if name:
        return name
    if ad_ref:
        return f"annonce {ad_ref}"
    return "le véhicule qui vous intéresse"


def _callback_sentence(phone: str | None, link: str | None) -> str:
    if phone and link:
        return f"Vous pouvez aussi nous joindre au {phone} ou choisir un créneau : {link}"
    if phone:
        return f"Vous pouvez aussi nous joindre au {phone}."
    if link:
        return f"Vous pouvez aussi choisir un créneau de rappel : {link}"
    return ""


def values_for(
    facts: LeadFacts,
    *,
    settings: MessagingSettings,
    zone: tzinfo,
    now: datetime,
    sender_name: str | None = None,
    text: str | None = None,
) -> dict[str, str]:
    first_name = (facts.first_name or "").strip()
    return {
        "greeting": f"Bonjour {first_name}" if first_name else "Bonjour",
        "first_name": first_name,
        "full_name": (facts.full_name or "").strip(),
        "vehicle": vehicle_label(facts.vehicle, facts.ad_ref),
        "ad_ref": facts.ad_ref or "",
        "site": facts.site or "",
        "dealer_name": settings.message_dealer_name,
        "sender_name": sender_name or settings.message_dealer_name,
        "call_time": call_time(facts.due_at, now, zone),
        "callback_phone": settings.message_callback_phone or "",
        "callback_link": settings.message_callback_url or "",
        "callback": _callback_sentence(
            settings.message_callback_phone, settings.message_callback_url
        ),
        "text": (text or "").strip(),
    }
