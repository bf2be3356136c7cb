"""Message templates over the API: the built-in French defaults, admins' overrides (CRUD), the
most specific one wins (site and source, site, source, every lead, default), unknown variables
refused with a 422 naming them, and the preview (sample or real lead; e-mail with text, HTML,
footer and List-Unsubscribe; SMS with the opt-out line within its segments)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from qualify.models import QueuedLead
from shared.db.session import session_scope
from shared.messaging.sms_text import measure_sms
from tests.qualify.conftest import QualifyApi, open_api, qualify_settings
from tests.qualify.test_api import assert_problem
from tests.support.clock import Clock

TEMPLATES = "/v1/message-templates"


@pytest.fixture
async def api(tmp_path: Path, clock: Clock) -> AsyncIterator[QualifyApi]:
    settings = qualify_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'qualify.db'}",
        tmp_path,
        message_dealer_name="Garage Dupont",
        message_public_base_url="https://leads.garage-dupont.fr",
        message_callback_phone="04 72 00 00 00",
    )
    async with open_api(settings, clock) as api:
        yield api


async def preview(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(f"{TEMPLATES}/preview", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(TEMPLATES, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_catalogue_lists_the_french_defaults_and_the_variables(api: QualifyApi) -> None:
    catalogue = (await api.base.get(f"{TEMPLATES}/catalogue")).json()
    kinds = {(item["kind"], item["channel"]) for item in catalogue["defaults"]}
    assert kinds == {
        (kind, channel)
        for kind in ("first_answer", "follow_up", "operator_reply")
        for channel in ("email", "sms")
    }
    first = next(
        item
        for item in catalogue["defaults"]
        if item["kind"] == "first_answer" and item["channel"] == "email"
    )
    assert "{{call_time}}" in first["text"]
    assert "Merci pour votre demande" in first["text"]
    assert {"first_name", "vehicle", "site", "sender_name", "call_time"} <= set(
        catalogue["variables"]
    )
    assert catalogue["operator_only"] == ["text"]


async def test_only_admins_manage_templates(api: QualifyApi) -> None:
    alice = await api.client("alice", roles=("operator", "manager"))
    assert_problem(await alice.get(f"{TEMPLATES}/catalogue"), 403, "forbidden")
    assert_problem(
        await alice.post(TEMPLATES, json={"kind": "first_answer", "channel": "sms", "text": "x"}),
        403,
        "forbidden",
    )
    assert_problem(await api.client_as(None).get(TEMPLATES), 401, "unauthorized")


async def test_crud(api: QualifyApi) -> None:
    body = {
        "kind": "first_answer",
        "channel": "email",
        "source": "leboncoin",
        "subject": "Votre {{vehicle}} chez {{dealer_name}}",
        "text": "{{greeting}}, merci ! Nous vous appelons {{call_time}}.",
    }
    created = await create(api.base, **body)
    assert created["source"] == "leboncoin"
    assert created["site"] is None
    assert created["updated_by"]
    assert_problem(await api.base.post(TEMPLATES, json=body), 409, "template-exists")

    listed = (await api.base.get(TEMPLATES, params={"source": "leboncoin"})).json()
    assert [item["id"] for item in listed] == [created["id"]]
    assert (await api.base.get(TEMPLATES, params={"source": "facebook"})).json() == []
    assert (await api.base.get(f"{TEMPLATES}/{created['id']}")).json() == created

    replaced = await api.base.put(
        f"{TEMPLATES}/{created['id']}",
        json={"subject": "Bonjour", "text": "{{greeting}} !", "html": "<p>{{greeting}}</p>"},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["html"] == "<p>{{greeting}}</p>"
    assert replaced.json()["source"] == "leboncoin"

    assert (await api.base.delete(f"{TEMPLATES}/{created['id']}")).status_code == 204
    assert_problem(await api.base.get(f"{TEMPLATES}/{created['id']}"), 404, "template-not-found")
    assert_problem(await api.base.delete(f"{TEMPLATES}/{created['id']}"), 404)


async def test_unknown_variables_and_stray_braces_are_refused_with_a_clear_422(
    api: QualifyApi,
) -> None:
    body = assert_problem(
        await api.base.post(
            TEMPLATES,
            json={
                "kind": "first_answer",
                "channel": "email",
                "subject": "Pour {{prenom}}",
                "text": "Bonjour {{ first_name }}, {{text}} et {{vehicule|votre voiture}}",
            },
        ),
        422,
        "validation-error",
    )
    problems = {(error["field"], error["message"]) for error in body["errors"]}
    assert problems == {
        ("subject", "unknown variable 'prenom'"),
        ("text", "unknown variable 'text' (only in operator replies)"),
        ("text", "unknown variable 'vehicule'"),
    }
    assert "prenom" in body["detail"]

    stray = assert_problem(
        await api.base.post(
            TEMPLATES,
            json={"kind": "follow_up", "channel": "sms", "text": "Bonjour {{first_name}"},
        ),
        422,
    )
    assert stray["errors"][0]["type"] == "syntax"

    missing_subject = assert_problem(
        await api.base.post(TEMPLATES, json={"kind": "follow_up", "channel": "email", "text": "x"}),
        422,
    )
    assert [error["field"] for error in missing_subject["errors"]] == ["subject"]
    sms_subject = assert_problem(
        await api.base.post(
            TEMPLATES,
            json={"kind": "follow_up", "channel": "sms", "subject": "x", "text": "x"},
        ),
        422,
    )
    assert [error["field"] for error in sms_subject["errors"]] == ["subject"]
    # The operator's text is a variable of operator replies.
    await create(api.base, kind="operator_reply", channel="sms", text="{{text}} -- {{sender_name}}")
    # And an unsaved content is checked by the preview the same way.
    assert_problem(
        await api.base.post(
            f"{TEMPLATES}/preview",
            json={"kind": "first_answer", "channel": "sms", "content": {"text": "{{nope}}"}},
        ),
        422,
    )


async def test_the_most_specific_template_wins(api: QualifyApi) -> None:
    lead = await api.add_lead(source="leboncoin", first_name="Camille")
    async with session_scope(api.runtime.session_factory) as session:
        await session.execute(
            update(QueuedLead).where(QueuedLead.lead_id == lead).values(site="LYON-01")
        )

    async def chosen() -> tuple[str, str]:
        result = await preview(api.base, kind="first_answer", channel="sms", lead_id=lead)
        return result["scope"], result["sms"]["text"].split("\n")[0]

    assert (await chosen())[0] == "default"
    every = await create(api.base, kind="first_answer", channel="sms", text="Tous {{first_name}}")
    assert await chosen() == ("all_leads", "Tous Camille")
    other_source = await create(
        api.base, kind="first_answer", channel="sms", source="facebook", text="Facebook"
    )
    assert await chosen() == ("all_leads", "Tous Camille")
    source = await create(
        api.base, kind="first_answer", channel="sms", source="leboncoin", text="Leboncoin"
    )
    assert await chosen() == ("source", "Leboncoin")
    site = await create(api.base, kind="first_answer", channel="sms", site="LYON-01", text="Lyon")
    assert await chosen() == ("site", "Lyon")
    await create(api.base, kind="first_answer", channel="sms", site="PARIS-02", text="Paris")
    both = await create(
        api.base,
        kind="first_answer",
        channel="sms",
        site="LYON-01",
        source="leboncoin",
        text="Lyon Leboncoin",
    )
    assert await chosen() == ("site_and_source", "Lyon Leboncoin")
    # Another kind or channel is not affected.
    email = await preview(api.base, kind="first_answer", channel="email", lead_id=lead)
    assert email["scope"] == "default"

    for template, expected in (
        (both, "Lyon"),
        (site, "Leboncoin"),
        (source, "Tous Camille"),
        (every, None),
    ):
        assert (await api.base.delete(f"{TEMPLATES}/{template['id']}")).status_code == 204
        scope, text = await chosen()
        if expected is None:
            assert scope == "default"
        else:
            assert text == expected
    assert other_source["source"] == "facebook"


async def test_preview_of_a_sample_lead_email_and_sms(api: QualifyApi) -> None:
    email = await preview(api.base, kind="first_answer", channel="email", source="facebook")
    assert email["sample"] is True
    assert email["scope"] == "default"
    values = email["variables"]
    assert values["greeting"] == "Bonjour Camille"
    assert values["vehicle"] == "Peugeot 208 (2019)"
    # Tuesday 11:00 + 15 business minutes (the default deadline).
    assert values["call_time"] == "aujourd'hui avant 11h15"
    message = email["email"]
    assert message["subject"] == "Votre demande : Peugeot 208 (2019)"
    text = message["text"]
    assert "Un conseiller de Garage Dupont vous appelle aujourd'hui avant 11h15." in text
    assert "Vous pouvez aussi nous joindre au 04 72 00 00 00." in text
    # The footer names the dealer and gives the unsubscribe link (the lead's token inside).
    assert (
        "Pour ne plus recevoir nos messages : https://leads.garage-dupont.fr/v1/unsubscribe/"
        in (text)
    )
    assert "\n\n\n" not in text
    assert message["html"].startswith("<!DOCTYPE html>")
    assert "Garage Dupont vous appelle" in message["html"]
    unsubscribe = message["list_unsubscribe"]
    assert unsubscribe.startswith("<mailto:concession+")
    assert "?subject=unsubscribe>, <https://leads.garage-dupont.fr/v1/unsubscribe/" in unsubscribe

    sms = (await preview(api.base, kind="first_answer", channel="sms"))["sms"]
    assert sms["text"].endswith("\nSTOP au 36111")
    assert sms["text"].startswith("Bonjour Camille, merci pour votre demande (Peugeot 208 (2019)).")
    assert sms["encoding"] == "GSM-7"
    assert sms["segments"] == measure_sms(sms["text"]).segments <= 2
    assert sms["truncated"] is False


async def test_preview_fits_a_long_sms_within_two_segments_with_the_opt_out_line(
    api: QualifyApi,
) -> None:
    long_text = "{{greeting}}, " + "votre véhicule vous attend chez nous. " * 12
    sms = (await preview(api.base, kind="follow_up", channel="sms", content={"text": long_text}))[
        "sms"
    ]
    assert sms["truncated"] is True
    assert sms["segments"] == 2
    assert sms["text"].endswith("...\nSTOP au 36111")
    assert measure_sms(sms["text"]).segments == 2


async def test_preview_for_a_real_lead_and_the_operator_text(api: QualifyApi) -> None:
    lead = await api.add_lead(
        first_name="Hélène", vehicle={"make": "Citroën", "model": "C3", "year": 2021}
    )
    result = await preview(
        api.base,
        kind="operator_reply",
        channel="email",
        lead_id=lead,
        text="Le véhicule est disponible samedi.",
        sender_name="Alice",
    )
    assert result["sample"] is False
    text = result["email"]["text"]
    assert text.startswith("Bonjour Hélène,\n\nLe véhicule est disponible samedi.\n\nAlice\n")
    assert result["email"]["subject"] == "Votre demande : Citroën C3 (2021)"
    missing = assert_problem(
        await api.base.post(
            f"{TEMPLATES}/preview",
            json={"kind": "operator_reply", "channel": "sms", "lead_id": lead},
        ),
        422,
    )
    assert missing["errors"][0]["field"] == "text"
    assert_problem(
        await api.base.post(
            f"{TEMPLATES}/preview",
            json={"kind": "first_answer", "channel": "sms", "lead_id": "no-such-lead"},
        ),
        404,
        "lead-not-found",
    )


async def test_html_override_escapes_values_and_keeps_the_footer(api: QualifyApi) -> None:
    lead = await api.add_lead(first_name="<b>Zoé</b>")
    await create(
        api.base,
        kind="first_answer",
        channel="email",
        subject="Merci {{first_name}}",
        text="Merci {{first_name}}",
        html="<html><body><h1>Merci {{first_name|cher client}}</h1></body></html>",
    )
    email = (await preview(api.base, kind="first_answer", channel="email", lead_id=lead))["email"]
    assert "<h1>Merci &lt;b&gt;Zoé&lt;/b&gt;</h1>" in email["html"]
    assert email["html"].index("Pour ne plus recevoir") < email["html"].index("</body>")
    assert email["subject"] == "Merci <b>Zoé</b>"  # a header: plain text
