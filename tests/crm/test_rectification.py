"""Rectification (Art. 16) in crm: a manager corrects a client's names, phone or e-mail; the
record and its leads' receipts change, the timeline says who changed which fields (no values),
``privacy.client-rectified.v1`` leaves through the outbox with the new values; bad values are
problem+json, another client's phone or e-mail a clear 409, a repeated PATCH a no-op."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import select

from crm.privacy.rectification import CLIENT_RECTIFIED
from shared.access.apply import apply_person, apply_token_issued
from shared.auth import hash_token
from shared.db import session_scope
from shared.events.access import PersonChangedV1, TokenIssuedV1
from shared.events.payloads import ContactV1
from shared.events.privacy import ClientRectifiedV1
from tests.crm.conftest import CrmFactory, receive, runtime_of, store_role_token
from tests.support.clock import TUESDAY_11H, Clock
from tests.support.harness import RunningService

OLD_PHONE = "+33612345678"
NEW_PHONE = "+33698765432"
PERSON = ContactV1(first_name="Jean", last_name="Dupond", full_name="Jean Dupond", phone=OLD_PHONE)


async def _published(service: RunningService) -> list[ClientRectifiedV1]:
    runtime = runtime_of(service)
    outbox = runtime.outbox.table
    async with session_scope(runtime.session_factory) as session:
        values = (
            await session.scalars(
                select(outbox.c.value).where(outbox.c.event_type == CLIENT_RECTIFIED)
            )
        ).all()
    return [ClientRectifiedV1.model_validate(json.loads(value)) for value in values]


async def test_a_manager_corrects_a_client_everywhere(crm: CrmFactory) -> None:
    clock = Clock(TUESDAY_11H)
    async with crm.running(clock=clock) as system:
        service = system.services["crm"]
        client_id = await receive(service, PERSON)
        second = ContactV1(full_name="J. Dupond", phone=OLD_PHONE)
        assert await receive(service, second) == client_id  # two leads, one client
        clock.advance(minutes=5)
        token = await store_role_token(service, "manager")
        manager = service.client_as(token)

        async with manager:
            answer = await manager.patch(
                f"/v1/clients/{client_id}",
                json={"last_name": "Dupont", "phone": "06 98 76 54 32", "email": "Jean@Example.FR"},
            )

        assert answer.status_code == 200, answer.text
        client = answer.json()
        assert (client["first_name"], client["last_name"], client["full_name"]) == (
            "Jean",
            "Dupont",
            "Jean Dupont",
        )
        assert (client["phone"], client["email"]) == (NEW_PHONE, "jean@example.fr")
        # The receipts of both leads carry the corrected values (a split rebuilds from them).
        receipts = [e for e in client["timeline"] if e["kind"] == "lead.received"]
        assert len(receipts) == 2
        assert {e["details"]["contact"]["phone"] for e in receipts} == {NEW_PHONE}
        assert {e["details"]["contact"]["last_name"] for e in receipts} == {"Dupont"}
        # Who (an actor id, named in the answer) changed which fields; no value, old or new.
        [entry] = [e for e in client["timeline"] if e["kind"] == "client.rectified"]
        actor = entry["details"]["by"]
        assert entry["details"] == {
            "fields": ["last_name", "full_name", "phone", "email"],
            "by": actor,
        }
        assert entry["actor_names"] == {actor: "manager"}  # the token's name
        assert entry["occurred_at"].startswith("2026-")
        text = json.dumps(entry)
        for value in ("Dupon", "98 76", "+336", "example.fr", "Jean"):
            assert value not in text
        # Found under the new phone, no longer under the old one.
        found = await system.crm.get("/v1/clients", params={"phone": "0698765432"})
        assert [item["id"] for item in found.json()["items"]] == [client_id]
        gone = await system.crm.get("/v1/clients", params={"phone": OLD_PHONE})
        assert gone.json()["items"] == []

        [event] = await _published(service)
        assert event.client_id == client_id
        assert sorted(event.lead_ids) == sorted({e["lead_id"] for e in receipts})
        assert event.fields == ["full_name", "phone", "email"]
        assert (event.full_name, event.phone, event.email) == (
            "Jean Dupont",
            NEW_PHONE,
            "jean@example.fr",
        )
        assert event.rectified_by == entry["details"]["by"]

        # The same values again: nothing changes, nothing is published, no second entry.
        again = await system.crm.patch(
            f"/v1/clients/{client_id}", json={"phone": "+33 6 98 76 54 32", "last_name": "Dupont"}
        )
        assert again.status_code == 200
        assert len(await _published(service)) == 1
        kinds = [e["kind"] for e in again.json()["timeline"]]
        assert kinds.count("client.rectified") == 1


async def test_a_removed_email_and_a_full_name_are_published_as_named(crm: CrmFactory) -> None:
    async with crm.running() as system:
        service = system.services["crm"]
        client_id = await receive(
            service, ContactV1(full_name="Ana Lima", phone=OLD_PHONE, email="ana@ex.fr")
        )
        answer = await system.crm.patch(
            f"/v1/clients/{client_id}", json={"email": None, "full_name": "Ana Lima Souza"}
        )
        assert answer.status_code == 200, answer.text
        assert (answer.json()["email"], answer.json()["full_name"]) == (None, "Ana Lima Souza")
        [event] = await _published(service)
        assert event.fields == ["full_name", "email"]
        assert (event.full_name, event.email, event.phone) == ("Ana Lima Souza", None, None)


async def test_bad_values_are_problems_that_quote_no_value(crm: CrmFactory) -> None:
    async with crm.running() as system:
        client_id = await receive(system.services["crm"], PERSON)
        cases: list[tuple[dict[str, Any], str]] = [
            ({"phone": "06 12"}, "phone"),
            ({"email": "jean@@example"}, "email"),
            ({"email": "x1@messagerie.lacentrale.fr"}, "email"),
            ({"first_name": ""}, "first_name"),
            ({"first_name": "x" * 101}, "first_name"),
            ({"nickname": "JD"}, "nickname"),
            ({}, "body"),
        ]
        for body, field in cases:
            answer = await system.crm.patch(f"/v1/clients/{client_id}", json=body)
            assert answer.status_code == 422, (body, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            problem = answer.json()
            assert field in {error["field"] for error in problem["errors"]}, problem
            for value in body.values():
                if isinstance(value, str) and len(value) > 3:
                    assert value not in answer.text
        # A name given whole by its source: a part alone cannot say what it becomes.
        whole = await receive(system.services["crm"], ContactV1(full_name="Ana Lima"))
        part = await system.crm.patch(f"/v1/clients/{whole}", json={"last_name": "Souza"})
        assert part.status_code == 422
        assert [error["field"] for error in part.json()["errors"]] == ["full_name"]
        unknown = await system.crm.patch("/v1/clients/nobody", json={"phone": NEW_PHONE})
        assert unknown.status_code == 404
        assert await _published(system.services["crm"]) == []


async def test_another_clients_phone_or_email_is_refused(crm: CrmFactory) -> None:
    async with crm.running() as system:
        service = system.services["crm"]
        client_id = await receive(service, PERSON)
        other_id = await receive(
            service, ContactV1(full_name="Marie Curie", phone=NEW_PHONE, email="marie@ex.fr")
        )
        for body, field in (
            ({"phone": "0698765432"}, "phone"),
            ({"email": "MARIE@ex.fr"}, "email"),
        ):
            answer = await system.crm.patch(f"/v1/clients/{client_id}", json=body)
            assert answer.status_code == 409, answer.text
            problem = answer.json()
            assert problem["type"].endswith("contact-of-another-client")
            assert (problem["field"], problem["other_client_id"]) == (field, other_id)
            assert "98 76" not in answer.text
            assert "+3369" not in answer.text
            assert "marie@" not in answer.text.lower()
        unchanged = (await system.crm.get(f"/v1/clients/{client_id}")).json()
        assert unchanged["phone"] == OLD_PHONE
        assert await _published(service) == []


async def test_only_managers_and_the_dpo_rectify(crm: CrmFactory) -> None:
    async with crm.running() as system:
        service = system.services["crm"]
        client_id = await receive(service, PERSON)
        roles = (
            ("operator", 403),
            ("seller", 403),
            ("source", 403),
            ("manager", 200),
            ("dpo", 200),
        )
        for role, status in roles:
            token = await store_role_token(service, role)
            async with service.client_as(token) as caller:
                answer = await caller.patch(
                    f"/v1/clients/{client_id}", json={"first_name": f"Jean-{role}"}
                )
            assert answer.status_code == status, (role, answer.text)
        async with service.client_as(None) as anonymous:
            answer = await anonymous.patch(f"/v1/clients/{client_id}", json={"phone": NEW_PHONE})
        assert answer.status_code == 401


async def test_the_timeline_names_a_person_as_the_directory_names_them_now(
    crm: CrmFactory,
) -> None:
    """A named person (dispatch's people directory, applied from vo.access) rectifies: the entry
    keeps their id only; a renaming shows in the next answer."""
    clock = Clock(TUESDAY_11H)
    async with crm.running(clock=clock) as system:
        service = system.services["crm"]
        runtime = runtime_of(service)
        client_id = await receive(service, PERSON)
        person_id, token = str(uuid.uuid4()), "vo_dpo-of-the-group"

        async def person(name: str, version: int) -> None:
            async with session_scope(runtime.session_factory) as session:
                await apply_person(
                    session,
                    runtime.infra,
                    PersonChangedV1(
                        person_id=person_id,
                        version=version,
                        kind="person",
                        name=name,
                        roles=["dpo"],
                        active=True,
                        change="created" if version == 1 else "updated",
                        changed_at=clock.now,
                    ),
                )

        await person("Claire Martin", 1)
        async with session_scope(runtime.session_factory) as session:
            await apply_token_issued(
                session,
                runtime.infra,
                TokenIssuedV1(
                    token_id=str(uuid.uuid4()),
                    person_id=person_id,
                    token_hash=hash_token(token),
                    label="laptop",
                    issued_at=clock.now,
                ),
            )
        async with service.client_as(token) as dpo:
            answer = await dpo.patch(f"/v1/clients/{client_id}", json={"first_name": "Jeanne"})
        assert answer.status_code == 200, answer.text
        [entry] = [e for e in answer.json()["timeline"] if e["kind"] == "client.rectified"]
        assert entry["details"] == {"fields": ["first_name", "full_name"], "by": person_id}
        assert entry["actor_names"] == {person_id: "Claire Martin"}

        await person("Claire Martin-Roy", 2)
        again = (await system.crm.get(f"/v1/clients/{client_id}")).json()
        [entry] = [e for e in again["timeline"] if e["kind"] == "client.rectified"]
        assert entry["actor_names"] == {person_id: "Claire Martin-Roy"}
        assert "Claire" not in json.dumps(entry["details"])
