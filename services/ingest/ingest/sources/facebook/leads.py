"""A Graph API lead (``id``, ``created_time``, ``field_data``) to a lead draft."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ingest.canonical import Contact, LeadDraft, Outcome, Quarantine, Vehicle
from ingest.canonical.contacts import clean
from ingest.canonical.instants import utc_instant

_CONTACT_KEYS = {"full_name", "first_name", "last_name", "email", "phone_number"}
_VEHICLE_KEYS = {"car_make", "vehicle_make", "car_model", "vehicle_model"}
_KNOWN = {
    "city": "city",
    "zip_code": "postcode",
    "post_code": "postcode",
    "postal_code": "postcode",
    "selected_dealer": "store_number",
    "country": "country",
}


def _created(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
    return utc_instant(parsed)


def map_lead(document: Any, *, leadgen_id: str, page_id: str | None) -> Outcome:
    if not isinstance(document, dict):
        return Quarantine("graph_response_not_an_object")
    fields: dict[str, str] = {}
    for item in document.get("field_data") or []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        values = item.get("values")
        if isinstance(values, list):
            text = ", ".join(str(v) for v in values if isinstance(v, str | int | float))
        else:
            text = str(values) if isinstance(values, str) else ""
        cleaned = clean(text, 2000)
        if cleaned:
            fields[item["name"][:100]] = cleaned
    contact = Contact.from_raw(
        first_name=fields.get("first_name"),
        last_name=fields.get("last_name"),
        full_name=fields.get("full_name"),
        email=fields.get("email"),
        phone=fields.get("phone_number"),
    )
    extra: dict[str, Any] = {}
    answers: dict[str, str] = {}
    for name, value in fields.items():
        if name in _CONTACT_KEYS or name in _VEHICLE_KEYS:
            continue
        if name in _KNOWN:
            extra[_KNOWN[name]] = value
        else:
            answers[name] = value
    if answers:
        extra["answers"] = answers
    for key in ("form_id", "ad_id", "platform"):
        if isinstance(document.get(key), str):
            extra[key] = document[key][:64]
    if page_id:
        extra["page_id"] = page_id
    consents: dict[str, bool] = {}
    for response in document.get("custom_disclaimer_responses") or []:
        if isinstance(response, dict) and isinstance(response.get("checkbox_key"), str):
            consents[response["checkbox_key"][:60]] = response.get("is_checked") in ("1", 1, True)
    make = fields.get("car_make") or fields.get("vehicle_make")
    return LeadDraft(
        source="facebook",
        source_ref=leadgen_id,
        received_at=_created(document.get("created_time")),
        contact=contact,
        vehicle=Vehicle(make=make, model=fields.get("car_model") or fields.get("vehicle_model")),
        consents=consents,
        extra=extra,
        layout="facebook_lead_ads",
    )
