"""The authorization matrix, generated from the four OpenAPI documents: every operation by every
caller (no token, a garbage token, another scheme, one token per role) gets the documented
status, and the wrong owner of a claimed lead or an assignment is refused.

Who may call an operation is not written here: each app publishes it (``x-roles``, read from the
route's ``require_roles`` dependencies, ``shared/openapi_roles.py``). A caller without one of those
roles gets 403, a caller without a valid token 401, both problem+json and documented; a caller
with one reaches the handler (anything but 401/403/5xx, and documented). An operation with no
``x-roles`` must be declared in ``PUBLIC`` with the reason it needs no role: a new endpoint that
forgets its role check fails here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from shared.auth import ROLES, store_token
from shared.db.session import session_scope
from tests.support.fuzz import record_figures
from tests.support.harness import SERVICES, System, eventually, run_system
from tests.support.infra import create_database, drop_database
from tests.support.openapi_ops import ALWAYS, Operation, is_problem, operations, system_settings

# Operations that check no role, and why that is right.
PUBLIC: dict[tuple[str, str, str], str] = {
    ("*", "GET", "/healthz"): "liveness probe of the orchestrator",
    ("*", "GET", "/readyz"): "readiness probe of the orchestrator",
    ("*", "GET", "/metrics"): "scraped by Prometheus inside the private network",
    ("ingest", "GET", "/v1/sources/facebook/webhook"): "Meta's handshake: the verify token",
    ("ingest", "POST", "/v1/sources/facebook/webhook"): "Meta's X-Hub-Signature-256 signature",
    ("qualify", "GET", "/v1/unsubscribe/{token}"): "the prospect's link: the signed token",
    ("qualify", "POST", "/v1/unsubscribe/{token}"): "one-click unsubscribe: the signed token",
    ("qualify", "GET", "/v1/sms/delivery-receipts/{secret}"): "the SMS provider: the URL secret",
}

# Operations on something one caller holds: another caller of the same role is refused.
OWNED_BY_OPERATOR = {
    ("POST", "/v1/leads/{lead_id}/claim"): None,
    ("POST", "/v1/leads/{lead_id}/claim/renewal"): None,
    ("DELETE", "/v1/leads/{lead_id}/claim"): None,
    ("POST", "/v1/leads/{lead_id}/attempts"): {"channel": "phone", "outcome": "no_answer"},
    ("POST", "/v1/leads/{lead_id}/qualification"): {"intent": "buy", "channel": "full_web"},
    ("POST", "/v1/leads/{lead_id}/disqualification"): {"reason": "not_interested"},
}
OWNED_BY_SELLER = {
    ("GET", "/v1/assignments/{assignment_id}"): None,
    ("POST", "/v1/assignments/{assignment_id}/accept"): None,
    ("POST", "/v1/assignments/{assignment_id}/decline"): {"reason": "busy"},
    ("POST", "/v1/assignments/{assignment_id}/contacted"): {"channel": "phone"},
    ("POST", "/v1/assignments/{assignment_id}/appointment"): {
        "appointment_at": "2026-11-26T10:00:00+01:00"
    },
    ("POST", "/v1/assignments/{assignment_id}/sold"): None,
    ("POST", "/v1/assignments/{assignment_id}/lost"): {"reason": "other"},
}

# Cells this matrix found wrong, left to the service that owns them (strict: a fix turns red
# until the line goes).
KNOWN: dict[str, str] = {}

# The detail of the role check's 403 (shared/api.py), as opposed to a handler's own 403.
ROLE_REFUSAL = "This operation needs one of the roles"
OTHER_SCHEMES = {"Authorization": "Basic dm86dm8="}


def public_reason(operation: Operation) -> str | None:
    return PUBLIC.get(("*", operation.method, operation.path)) or PUBLIC.get(
        (operation.service, operation.method, operation.path)
    )


def role_token(role: str) -> str:
    return f"vo_matrix-{role}"


@dataclass
class Matrix:
    system: System
    # Service → caller label → headers.
    callers: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    cells: int = 0

    def client(self, service: str, headers: Mapping[str, str]) -> httpx.AsyncClient:
        running = self.system.services[service]
        return httpx.AsyncClient(
            transport=running.transport, base_url=f"http://{service}.test", headers=headers
        )

    async def send(
        self,
        operation: Operation,
        headers: Mapping[str, str],
        *,
        url: str | None = None,
        json: Any = None,
    ) -> httpx.Response:
        body, content_headers = operation.minimal_body()
        if json is not None:
            body, content_headers = None, {}
        async with self.client(operation.service, headers) as client:
            self.cells += 1
            return await client.request(
                operation.method,
                url or operation.url(),
                content=body,
                json=json,
                headers=content_headers,
            )


async def store_tokens(system: System, tokens: Mapping[str, tuple[str, ...]]) -> None:
    for running in system.services.values():
        runtime = running.app.state.runtime
        async with session_scope(runtime.session_factory) as session:
            for token, roles in tokens.items():
                await store_token(
                    session, runtime.infra.api_token, token=token, name=token[3:], roles=roles
                )


def all_roles() -> list[str]:
    """Every role the code knows and every role a document names."""
    named = {role for operation in operations() for role in operation.roles or ()}
    return sorted(set(ROLES) | named)


async def directory_seller(system: System, name: str, **values: Any) -> tuple[str, str]:
    """A seller of the dispatch directory and its own token: (seller id, token)."""
    body = {"display_name": name, "shifts": ALWAYS, "capacity": 1000, **values}
    created = await system.client("dispatch").post("/v1/sellers", json=body)
    assert created.status_code == 201, created.text
    seller_id = str(created.json()["id"])
    token = await system.client("dispatch").post(f"/v1/sellers/{seller_id}/token")
    assert token.status_code == 201, token.text
    return seller_id, str(token.json()["token"])


async def open_site(system: System) -> None:
    site = {
        "id": "matrix",
        "name": "Matrix site",
        "postcode": "75001",
        "opening_hours": ALWAYS,
        "full_web_fallback": True,
        "fallback_after_minutes": 0,
    }
    response = await system.client("dispatch").post("/v1/sites", json=site)
    assert response.status_code == 201, response.text


async def build_matrix(system: System) -> Matrix:
    roles = all_roles()
    await store_tokens(system, {role_token(role): (role,) for role in roles})
    await open_site(system)
    _, seller_token = await directory_seller(system, "Matrix seller", mode="full_web")
    matrix = Matrix(system)
    for service in SERVICES:
        callers = {
            "no token": {},
            "garbage token": {"Authorization": "Bearer vo_garbage-not-a-token"},
            "other scheme": OTHER_SCHEMES,
        }
        for role in roles:
            # In dispatch a seller acts through the token of a seller of its directory.
            token = seller_token if (service, role) == ("dispatch", "seller") else role_token(role)
            callers[role] = {"Authorization": f"Bearer {token}"}
        matrix.callers[service] = callers
    return matrix


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def matrix(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Matrix]:
    settings = system_settings(tmp_path_factory.mktemp("matrix"))
    async with run_system(settings, workers=False) as system:
        built = await build_matrix(system)
        yield built
        callers = len(next(iter(built.callers.values())))
        record_figures(
            "authorization matrix",
            {"operations": len(operations()), "callers": callers, "requests": built.cells},
        )


def expected(operation: Operation, caller: str) -> str:
    """What the caller must get: 'refused 401', 'refused 403' or 'reaches the handler'."""
    roles = operation.roles
    assert roles is not None
    if caller in {"no token", "garbage token", "other scheme"}:
        return "refused 401"
    return "reaches the handler" if caller in roles else "refused 403"


def judge(operation: Operation, caller: str, response: httpx.Response) -> str | None:
    """What is wrong with this cell, or None."""
    status = response.status_code
    if status >= 500:
        return f"{caller}: {status} server error"
    if status not in operation.documented:
        return f"{caller}: {status} is not documented ({sorted(operation.documented)})"
    if status >= 400 and not is_problem(response):
        return f"{caller}: {status} without problem+json"
    want = expected(operation, caller)
    by_role_check = status == 403 and ROLE_REFUSAL in response.json().get("detail", "")
    if want == "reaches the handler":
        # The handler may still refuse what is not the caller's (an admin is no seller of the
        # directory); the role check may not.
        if status == 401 or by_role_check:
            return f"{caller}: {status}, refused although allowed"
        return None
    if status != int(want.split()[1]):
        return f"{caller}: {status}, wanted {want}"
    if status == 403 and not by_role_check:
        return f"{caller}: 403 from the handler, not from the role check"
    return None


def cases() -> list[Any]:
    return [
        pytest.param(
            operation,
            id=operation.key,
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN[operation.key])]
            if operation.key in KNOWN
            else [],
        )
        for operation in operations()
    ]


def test_every_operation_says_who_may_call_it() -> None:
    """x-roles, or a line in PUBLIC saying why no role is needed; a PUBLIC line with no such
    operation left is stale."""
    undeclared = [op.key for op in operations() if op.roles is None and public_reason(op) is None]
    assert undeclared == [], "operations with neither a role check nor a PUBLIC line"
    served = {(op.method, op.path) for op in operations()}
    stale = [key for key in PUBLIC if (key[1], key[2]) not in served]
    assert stale == []
    for op in operations():
        if op.roles is not None:
            assert op.roles <= set(all_roles()), op.key
            assert {401, 403} <= op.documented, f"{op.key} does not document 401 and 403"


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("operation", cases())
async def test_every_caller_gets_the_documented_status(
    matrix: Matrix, operation: Operation
) -> None:
    callers = matrix.callers[operation.service]
    wrong = []
    if operation.roles is None:
        # Public: every caller gets the same documented answer; no token changes it.
        statuses = {}
        for caller, headers in callers.items():
            response = await matrix.send(operation, headers)
            statuses[caller] = response.status_code
            if response.status_code >= 500 or response.status_code not in operation.documented:
                wrong.append(f"{caller}: {response.status_code} ({sorted(operation.documented)})")
        assert len(set(statuses.values())) == 1, statuses
    else:
        for caller, headers in callers.items():
            verdict = judge(operation, caller, await matrix.send(operation, headers))
            if verdict is not None:
                wrong.append(verdict)
    assert wrong == [], f"{operation.key}: {wrong}"


# --- the wrong owner ----------------------------------------------------------------------


@dataclass
class Owners:
    lead_id: str
    assignment_id: str
    holder: dict[str, str]
    other: dict[str, str]


async def queued(system: System, lead_id: str) -> bool:
    items = (await system.client("qualify").get("/v1/queue")).json()["items"]
    return any(item["lead_id"] == lead_id for item in items)


def owned(service: str, table: Mapping[tuple[str, str], Any]) -> list[tuple[Operation, Any]]:
    chosen = []
    for op in operations(service):
        if (op.method, op.path) in table:
            chosen.append((op, table[(op.method, op.path)]))
    assert len(chosen) == len(table), f"{service}: an owned operation is gone or renamed"
    return chosen


async def test_the_wrong_owner_is_refused(tmp_path: Path) -> None:
    settings = system_settings(tmp_path)
    async with run_system(settings) as system:
        matrix = await build_matrix(system)
        await store_tokens(system, {"vo_matrix-operator-2": ("operator",)})
        operator_a = {"Authorization": f"Bearer {role_token('operator')}"}
        operator_b = {"Authorization": "Bearer vo_matrix-operator-2"}
        seller_other = await directory_seller(system, "Other seller", mode="full_web")
        seller_here = await directory_seller(
            system, "Matrix in-store seller", mode="in_store", site_id="matrix"
        )
        lead = {
            "source": "leboncoin",
            "source_ref": "matrix-owner-1",
            "contact": {"full_name": "Prospect Matrice", "phone": "06 12 34 56 78"},
            "vehicle": {"ad_ref": "AD-MATRIX"},
        }
        accepted = await system.client("ingest").post("/v1/leads", json=lead)
        assert accepted.status_code == 202, accepted.text
        lead_id = str(accepted.json()["id"])
        await eventually(lambda: queued(system, lead_id), timeout_s=60)
        async with matrix.client("qualify", operator_a) as client:
            assert (await client.post(f"/v1/leads/{lead_id}/claim")).status_code == 200

        wrong = []
        for op, body in owned("qualify", OWNED_BY_OPERATOR):
            response = await matrix.send(op, operator_b, url=op.url(lead_id=lead_id), json=body)
            if response.is_success or response.status_code not in op.documented:
                wrong.append(f"operator B: {op.key} answered {response.status_code}")
            elif not is_problem(response):
                wrong.append(f"operator B: {op.key} {response.status_code} without problem+json")

        # The holder qualifies it; dispatch offers it to one of its sellers.
        async with matrix.client("qualify", operator_a) as client:
            qualified = await client.post(
                f"/v1/leads/{lead_id}/qualification",
                json={"intent": "buy", "channel": "in_store", "site": "matrix"},
            )
            assert qualified.status_code == 201, qualified.text

        async def offered() -> list[dict[str, Any]]:
            response = await system.client("dispatch").get(f"/v1/leads/{lead_id}/assignments")
            return list(response.json()) if response.status_code == 200 else []

        assignment = (await eventually(offered, timeout_s=60))[0]
        tokens = dict([seller_other, seller_here])
        holder = tokens.pop(assignment["seller_id"])
        (other,) = tokens.values()
        for op, body in owned("dispatch", OWNED_BY_SELLER):
            response = await matrix.send(
                op,
                {"Authorization": f"Bearer {other}"},
                url=op.url(assignment_id=assignment["id"]),
                json=body,
            )
            if response.status_code != 403 or not is_problem(response):
                wrong.append(f"other seller: {op.key} answered {response.status_code}")
        # The other seller's own views do not show it; the holder's list does.
        for token, shown in ((other, False), (holder, True)):
            async with matrix.client("dispatch", {"Authorization": f"Bearer {token}"}) as client:
                listed = await client.get("/v1/sellers/me/assignments")
                feed = await client.get("/v1/sellers/me/events")
            assert listed.status_code == feed.status_code == 200, (listed.text, feed.text)
            ids = {item["id"] for item in listed.json()}
            leads = {event["lead_id"] for event in feed.json()["events"]}
            # (The feed holds the messages of a tool; these sellers have none: never shown.)
            if (assignment["id"] in ids) != shown or (not shown and lead_id in leads):
                wrong.append(f"{'holder' if shown else 'other seller'}: own views {ids} {leads}")
        async with matrix.client("dispatch", {"Authorization": f"Bearer {holder}"}) as client:
            mine = await client.get(f"/v1/assignments/{assignment['id']}")
            assert mine.status_code == 200, mine.text  # the holder does reach it
        assert wrong == []


# --- a slice on PostgreSQL ----------------------------------------------------------------


@pytest.mark.postgres
async def test_a_slice_of_the_matrix_on_postgres(tmp_path: Path) -> None:
    """Every protected operation, on PostgreSQL: no token, a garbage token, one role refused and
    one allowed (the token lookups and the handlers' first queries run on the real server)."""
    urls = {name: await create_database() for name in SERVICES}
    try:
        settings = system_settings(tmp_path, **urls)
        async with run_system(settings, workers=False) as system:
            matrix = await build_matrix(system)
            wrong = []
            for op in operations():
                if op.roles is None or op.key in KNOWN:
                    continue
                callers = matrix.callers[op.service]
                refused = sorted(set(callers) - op.roles - {"no token", "other scheme"})
                allowed = sorted(op.roles - {"admin"}) or ["admin"]
                chosen = ["no token", refused[0], allowed[0]]
                for caller in chosen:
                    verdict = judge(op, caller, await matrix.send(op, callers[caller]))
                    if verdict is not None:
                        wrong.append(f"{op.key}: {verdict}")
            assert wrong == []
            assert matrix.cells >= 3 * 60
    finally:
        for url in urls.values():
            await drop_database(url)
